//! Whether a viewer's request for a channel may be served (X2; the hook viewer
//! tokens, X4, will fill). Every viewer path — `/live/<channel>.ts`, the HLS
//! playlist, segments and parts — asks here before serving; today all are allowed.

use super::request::RequestHead;
use super::response::Response;

/// `Ok` to serve `channel` to this request, or the refusal to send instead.
pub fn may_serve(channel: &str, head: &RequestHead) -> Result<(), Response> {
    let _ = (channel, head);
    Ok(())
}
