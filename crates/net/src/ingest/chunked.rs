//! Incremental decoder of the HTTP/1.1 chunked transfer coding (RFC 9112
//! §7.1) for ingest request bodies (feature X1). Sans-IO: it is handed
//! whatever the socket delivered and returns body data as slices of it, so a
//! body split anywhere decodes the same. Limits: a chunk-size line (with
//! extensions) is at most 32 bytes, a trailer line 1 KiB, the trailer 16 KiB.

use thiserror::Error;

/// Longest chunk-size line, extensions included, without CRLF.
pub const MAX_SIZE_LINE_BYTES: usize = 32;
const MAX_TRAILER_LINE_BYTES: usize = 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// At most 15 hex digits: sizes stay below 2^60.
const MAX_SIZE_DIGITS: usize = 15;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("chunk-size line longer than {MAX_SIZE_LINE_BYTES} bytes")]
    SizeLineTooLong,
    #[error("bad chunk size {0:?}")]
    BadSize(String),
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("trailer longer than {MAX_TRAILER_BYTES} bytes or a trailer line over {MAX_TRAILER_LINE_BYTES}")]
    TrailerTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SizeLine,
    Data { remaining: u64 },
    DataCr,
    DataLf,
    Trailer,
    Done,
}

/// See the module doc.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    line: Vec<u8>,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            line: Vec::with_capacity(MAX_SIZE_LINE_BYTES),
            trailer_bytes: 0,
        }
    }
}

impl ChunkedDecoder {
    /// True once the last chunk and the trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from the front of `input` and returns the next piece
    /// of body data, or `None` when `input` is used up or the body is done
    /// (bytes after the body stay in `input`).
    pub fn next<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ChunkedError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                State::Done => return Ok(None),
                State::Data { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(take);
                    *input = rest;
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining }
                    };
                    return Ok(Some(data));
                }
                State::DataCr | State::DataLf => {
                    let expected = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != expected {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    *input = rest;
                    self.state = if self.state == State::DataCr {
                        State::DataLf
                    } else {
                        State::SizeLine
                    };
                }
                State::SizeLine | State::Trailer => {
                    *input = rest;
                    self.line_byte(byte)?;
                }
            }
        }
        Ok(None)
    }

    /// One byte of a size line or trailer line; a line ends at LF.
    fn line_byte(&mut self, byte: u8) -> Result<(), ChunkedError> {
        let in_trailer = self.state == State::Trailer;
        if byte != b'\n' {
            let limit = if in_trailer {
                MAX_TRAILER_LINE_BYTES
            } else {
                MAX_SIZE_LINE_BYTES
            };
            // +1 leaves room for the CR before the LF.
            if self.line.len() > limit {
                return Err(if in_trailer {
                    ChunkedError::TrailerTooLarge
                } else {
                    ChunkedError::SizeLineTooLong
                });
            }
            self.line.push(byte);
            return Ok(());
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if in_trailer {
            self.trailer_bytes += self.line.len() + 2;
            if self.trailer_bytes > MAX_TRAILER_BYTES {
                return Err(ChunkedError::TrailerTooLarge);
            }
            if self.line.is_empty() {
                self.state = State::Done;
            }
        } else {
            if self.line.len() > MAX_SIZE_LINE_BYTES {
                return Err(ChunkedError::SizeLineTooLong);
            }
            let size = parse_size(&self.line)?;
            self.state = if size == 0 {
                State::Trailer
            } else {
                State::Data { remaining: size }
            };
        }
        self.line.clear();
        Ok(())
    }
}

/// Hex digits, optionally followed by `;extensions` (ignored).
fn parse_size(line: &[u8]) -> Result<u64, ChunkedError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    let bad = || ChunkedError::BadSize(String::from_utf8_lossy(line).into_owned());
    if digits.is_empty()
        || digits.len() > MAX_SIZE_DIGITS
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return Err(bad());
    }
    let text = std::str::from_utf8(digits).map_err(|_| bad())?;
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, bool, usize), ChunkedError> {
        let mut decoder = ChunkedDecoder::default();
        let mut body = Vec::new();
        let mut left_over = 0;
        for piece in input.chunks(step.max(1)) {
            let mut rest = piece;
            while let Some(data) = decoder.next(&mut rest)? {
                body.extend_from_slice(data);
            }
            left_over += rest.len();
        }
        Ok((body, decoder.is_done(), left_over))
    }

    const BODY: &[u8] =
        b"5\r\nhello\r\n1;name=value\r\n \r\nB\r\n0123456789a\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

    #[test]
    fn decodes_any_split() {
        for step in 1..BODY.len() {
            let (body, done, left) = decode(BODY, step).unwrap();
            assert_eq!(body, b"hello 0123456789a", "step {step}");
            assert!(done);
            assert_eq!(left, 4, "bytes after the body stay unread");
        }
    }

    #[test]
    fn accepts_bare_lf_line_ends() {
        let (body, done, _) = decode(b"3\nabc\r\n0\n\n", 100).unwrap();
        assert_eq!((body.as_slice(), done), (b"abc".as_slice(), true));
    }

    #[test]
    fn rejects_malformed_bodies() {
        let long = format!("1;{}\r\nx\r\n", "e".repeat(40));
        assert_eq!(
            decode(long.as_bytes(), 7),
            Err(ChunkedError::SizeLineTooLong)
        );
        assert!(matches!(
            decode(b"zz\r\n", 1),
            Err(ChunkedError::BadSize(_))
        ));
        assert!(matches!(decode(b"\r\n", 1), Err(ChunkedError::BadSize(_))));
        assert!(matches!(
            decode(b"-1\r\n", 1),
            Err(ChunkedError::BadSize(_))
        ));
        assert!(matches!(
            decode(b"1000000000000000\r\n", 1),
            Err(ChunkedError::BadSize(_))
        ));
        assert_eq!(decode(b"2\r\nabc\r\n", 3), Err(ChunkedError::MissingCrlf));
        let trailer = format!("0\r\n{}", "X-A: b\r\n".repeat(3000));
        assert_eq!(
            decode(trailer.as_bytes(), 999),
            Err(ChunkedError::TrailerTooLarge)
        );
    }

    #[test]
    fn never_panics_on_noise() {
        // A small deterministic generator stands in for a fuzzer here.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    const ALPHABET: &[u8] = b"0123456789abcdefXZ;\r\n \t";
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let _ = decode(&bytes, 1 + (seed % 5) as usize);
        }
    }
}
