//! The Prometheus text exposition format, version 0.0.4 (feature X4): a
//! family is declared by its first sample and written once, `# HELP` and
//! `# TYPE` first, its samples after, whatever order the samples came in.
//! Label values are escaped (`\\`, `\"`, `\n`), help texts too (`\\`, `\n`);
//! a name or label name that is not a Prometheus name is a bug of the caller
//! (names are constants), so it is checked with `debug_assert!` and the
//! sample dropped in release builds rather than corrupting the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

struct Family {
    kind: Kind,
    help: &'static str,
    samples: String,
}

/// A page being written: families in the order first seen.
#[derive(Default)]
pub struct Exposition {
    families: Vec<(&'static str, Family)>,
    index: BTreeMap<&'static str, usize>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter sample; `name` ends in `_total`.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: u64,
    ) {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        self.sample(name, Kind::Counter, help, labels, value as f64);
    }

    /// The link byte counters every role has: `[media, control]` received
    /// and sent.
    pub fn link_bytes(&mut self, bytes_in: [u64; 2], bytes_out: [u64; 2]) {
        let help_in =
            "Link bytes received (whole frames), by kind: media (blocks, shards) or control.";
        let help_out =
            "Link bytes sent (whole frames), by kind: media (blocks, shards) or control.";
        for (kind, i) in [("media", 0), ("control", 1)] {
            let labels = [("kind", kind)];
            self.counter(
                "tiercast_link_bytes_in_total",
                help_in,
                &labels,
                bytes_in[i],
            );
        }
        for (kind, i) in [("media", 0), ("control", 1)] {
            let labels = [("kind", kind)];
            self.counter(
                "tiercast_link_bytes_out_total",
                help_out,
                &labels,
                bytes_out[i],
            );
        }
    }

    /// A gauge sample.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.sample(name, Kind::Gauge, help, labels, value);
    }

    /// Declares a family with no sample yet (written with its HELP and TYPE
    /// only), so a scrape shows it before anything is counted.
    pub fn declare(&mut self, name: &'static str, kind: Kind, help: &'static str) {
        self.family(name, kind, help);
    }

    fn family(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &'static str,
    ) -> Option<&mut Family> {
        if !valid_name(name) {
            debug_assert!(false, "metric name {name:?} is not a Prometheus name");
            return None;
        }
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.families.push((
                    name,
                    Family {
                        kind,
                        help,
                        samples: String::new(),
                    },
                ));
                self.index.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let family = &mut self.families[i].1;
        if family.kind != kind {
            debug_assert!(
                false,
                "metric {name} written as {kind:?} and {:?}",
                family.kind
            );
            return None;
        }
        Some(family)
    }

    fn sample(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if labels.iter().any(|(k, _)| !valid_label_name(k)) {
            debug_assert!(
                false,
                "a label name of {name} is not a Prometheus name: {labels:?}"
            );
            return;
        }
        let Some(family) = self.family(name, kind, help) else {
            return;
        };
        let out = &mut family.samples;
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }

    /// The page.
    pub fn finish(self) -> String {
        let mut out = String::new();
        for (name, f) in &self.families {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(&mut out, f.help);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting `__` (reserved).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_help_and_type_per_family_whatever_the_order_of_samples() {
        let mut e = Exposition::new();
        e.counter("tiercast_a_total", "A.", &[("channel", "x")], 1);
        e.gauge("tiercast_b", "B.", &[], 2.5);
        e.counter("tiercast_a_total", "A.", &[("channel", "y")], 3);
        let page = e.finish();
        assert_eq!(
            page,
            "# HELP tiercast_a_total A.\n# TYPE tiercast_a_total counter\n\
             tiercast_a_total{channel=\"x\"} 1\ntiercast_a_total{channel=\"y\"} 3\n\
             # HELP tiercast_b B.\n# TYPE tiercast_b gauge\ntiercast_b 2.5\n"
        );
        assert_eq!(page.matches("# TYPE tiercast_a_total").count(), 1);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.gauge(
            "tiercast_g",
            "back\\slash\nnewline",
            &[("region", "a\"b\\c\nd")],
            1.0,
        );
        let page = e.finish();
        assert!(
            page.contains("# HELP tiercast_g back\\\\slash\\nnewline\n"),
            "{page}"
        );
        assert!(
            page.contains("tiercast_g{region=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{page}"
        );
        assert_eq!(page.lines().count(), 3, "no raw newline leaks: {page}");
    }

    #[test]
    fn special_values_and_declared_families() {
        let mut e = Exposition::new();
        e.declare("tiercast_empty_total", Kind::Counter, "Nothing yet.");
        e.gauge("tiercast_v", "V.", &[("k", "nan")], f64::NAN);
        e.gauge("tiercast_v", "V.", &[("k", "inf")], f64::INFINITY);
        e.gauge("tiercast_v", "V.", &[("k", "big")], 1e6);
        let page = e.finish();
        assert!(page.starts_with("# HELP tiercast_empty_total Nothing yet.\n# TYPE tiercast_empty_total counter\n# HELP tiercast_v"));
        assert!(page.contains("tiercast_v{k=\"nan\"} NaN\n"));
        assert!(page.contains("tiercast_v{k=\"inf\"} +Inf\n"));
        assert!(page.contains("tiercast_v{k=\"big\"} 1000000\n"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("tiercast_x:y_1"));
        assert!(!valid_name("1x") && !valid_name("a-b") && !valid_name(""));
        assert!(
            valid_label_name("channel") && !valid_label_name("__x") && !valid_label_name("a.b")
        );
    }
}
