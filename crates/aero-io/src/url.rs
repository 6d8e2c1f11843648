//! The one URL classifier: whether a string names a local path, an
//! `http(s)://` URL, an object-store URL or a URL of some other scheme.
//!
//! Every place that must tell these apart asks [`classify`]: the remote
//! openers ([`crate::remote::open_source`]), AEROSET manifests (paths,
//! `base_url`, the trust rules of `aero_set::resolve`) and the command line.
//! Schemes compare case-insensitively (RFC 3986 §3.1), and an object-store
//! URL needs a bucket everywhere.
//!
//! ```
//! use aero_io::url::{classify, Kind, ObjectScheme};
//! assert_eq!(classify("HTTPS://host/m.aero"), Kind::Http);
//! assert_eq!(
//!     classify("s3://bucket/sets/m.aero"),
//!     Kind::Object { scheme: ObjectScheme::S3, bucket: "bucket", key: "sets/m.aero" }
//! );
//! assert_eq!(classify("file:///etc/passwd"), Kind::OtherScheme("file"));
//! assert_eq!(classify("s3:///no-bucket"), Kind::OtherScheme("s3"));
//! assert_eq!(classify("models/part-000.aero"), Kind::LocalPath);
//! assert_eq!(classify("C:x"), Kind::LocalPath);
//! ```

/// An object-store service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectScheme {
    /// `s3://bucket/key` (Amazon S3 and S3-compatible servers).
    S3,
    /// `gs://bucket/key` (Google Cloud Storage).
    Gcs,
    /// `az://container/key` (Azure Blob Storage).
    Azure,
}

impl ObjectScheme {
    /// Every object-store service, in the order they are listed to users.
    pub const ALL: [ObjectScheme; 3] = [ObjectScheme::S3, ObjectScheme::Gcs, ObjectScheme::Azure];

    /// The scheme as written in URLs (`s3`, `gs`, `az`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectScheme::S3 => "s3",
            ObjectScheme::Gcs => "gs",
            ObjectScheme::Azure => "az",
        }
    }

    pub(crate) fn parse(scheme: &str) -> Option<ObjectScheme> {
        Self::ALL
            .into_iter()
            .find(|s| scheme.eq_ignore_ascii_case(s.as_str()))
    }
}

/// What a string names (see [`classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An `http://` or `https://` URL.
    Http,
    /// An object-store URL with a bucket (or container) name.
    Object {
        /// The service.
        scheme: ObjectScheme,
        /// The bucket (never empty).
        bucket: &'a str,
        /// Everything after `bucket/`, as written (percent-encoded); empty
        /// for a bucket URL.
        key: &'a str,
    },
    /// A URL of any other scheme (`file://`, `ftp://`…), or an object-store
    /// scheme without a bucket: a URL, never a local path, but not one that
    /// is read.
    OtherScheme(&'a str),
    /// Not a URL: a path on this machine (which may contain `:`, as `C:x`
    /// does; path rules are the caller's).
    LocalPath,
}

impl Kind<'_> {
    /// Whether the string is a URL of any scheme, that is, must never be
    /// taken for a local path.
    pub fn is_url(&self) -> bool {
        !matches!(self, Kind::LocalPath)
    }

    /// The URL's scheme as written (`None` for a local path).
    pub fn scheme<'s>(&self, s: &'s str) -> Option<&'s str> {
        self.is_url()
            .then(|| s.split_once("://").map(|(scheme, _)| scheme))
            .flatten()
    }
}

/// Classifies `s`: `scheme://…` with a syntactically valid scheme (a letter,
/// then letters, digits, `+`, `-`, `.`) is a URL, anything else a local
/// path. Schemes are case-insensitive.
pub fn classify(s: &str) -> Kind<'_> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Kind::LocalPath;
    };
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return Kind::LocalPath;
    }
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        return Kind::Http;
    }
    if let Some(object) = ObjectScheme::parse(scheme) {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if !bucket.is_empty() {
            return Kind::Object {
                scheme: object,
                bucket,
                key,
            };
        }
    }
    Kind::OtherScheme(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for s in [
            "http://h/x",
            "https://h:8080/a/b.aero",
            "HTTP://h/x",
            "Https://h",
        ] {
            assert_eq!(classify(s), Kind::Http, "{s}");
        }
        assert_eq!(
            classify("GS://b/x%20y.aero"),
            Kind::Object {
                scheme: ObjectScheme::Gcs,
                bucket: "b",
                key: "x%20y.aero"
            }
        );
        assert_eq!(
            classify("az://c"),
            Kind::Object {
                scheme: ObjectScheme::Azure,
                bucket: "c",
                key: ""
            }
        );
        for (s, scheme) in [
            ("s3://", "s3"),
            ("s3:///key", "s3"),
            ("ftp://h/x", "ftp"),
            ("file:///etc/passwd", "file"),
            ("git+ssh://h/r", "git+ssh"),
        ] {
            assert_eq!(classify(s), Kind::OtherScheme(scheme), "{s}");
            assert!(classify(s).is_url());
            assert_eq!(classify(s).scheme(s), Some(scheme));
        }
        for s in [
            "",
            "model.aero",
            "/abs/path",
            "C:x",
            "C:\\x",
            "s3:x",
            "./a://b",
            "1a://x",
            "a b://x",
        ] {
            assert_eq!(classify(s), Kind::LocalPath, "{s:?}");
            assert!(!classify(s).is_url());
        }
    }
}
