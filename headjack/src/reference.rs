//! Image references: parsing, validation and normalisation of `name[:tag][@digest]` strings.
//!
//! Implements the docker/distribution reference grammar:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]         host: DNS name (any case), IPv4, or [IPv6]
//! path             := component ( "/" component )*
//! component        := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" hex          sha256 (64), sha384 (96), sha512 (128) lowercase hex
//! ```
//!
//! and normalises the way the docker CLI does: the first component is a registry only if it
//! contains `.` or `:` or is `localhost`; otherwise the registry is `docker.io`, and a
//! single-component Docker Hub name gets the `library/` namespace; `index.docker.io` is written
//! `docker.io`; a reference without tag or digest gets the tag `latest`. The full name
//! (`registry/repository`) may be at most 255 characters, counted after normalisation.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, ErrorKind, Result};

/// The registry of names that do not name one (Docker Hub).
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The tag of references that give neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// The longest allowed name (`registry/repository`, after normalisation), in characters.
pub const NAME_MAX_LEN: usize = 255;

/// Docker Hub's legacy host name, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";

/// The namespace of Docker Hub's official images (`alpine` → `library/alpine`).
const OFFICIAL_NAMESPACE: &str = "library";

/// The key of Docker Hub in `~/.docker/config.json` `auths`.
const DOCKER_HUB_AUTH_SERVER: &str = "https://index.docker.io/v1/";

static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
    Regex::new(&format!(
        r"^(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
    ))
    .expect("domain regex is valid")
});

static COMPONENT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("component regex is valid")
});

static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("tag regex is valid")
});

static DIGEST_ALGORITHM_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$")
        .expect("digest algorithm regex is valid")
});

/// A parsed, validated and normalised OCI/Docker image reference.
///
/// Always fully qualified: it has a registry, a repository, and a tag, a digest or both.
/// `Display` prints the normalised form (`docker.io/library/alpine:latest`), which parses back
/// to an equal value.
///
/// ```
/// use headjack::reference::ImageRef;
///
/// let r = ImageRef::parse("alpine").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
/// assert_eq!(r.registry(), "docker.io");
/// assert_eq!(r.repository(), "library/alpine");
/// assert_eq!(r.tag(), Some("latest"));
/// assert_eq!(r.digest(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises an image reference.
    ///
    /// The input is taken as is (not trimmed). An invalid reference is an
    /// [`ErrorKind::InvalidBase`] error whose message quotes the input and says why, with a hint
    /// when the input looks like a mistyped file path.
    pub fn parse(s: &str) -> Result<ImageRef> {
        parse_reference(s).map_err(|why| {
            let mut message = format!("invalid image reference {s:?}: {why}");
            if let Some(hint) = path_hint(s) {
                message.push_str("; ");
                message.push_str(&hint);
            }
            Error::new(ErrorKind::InvalidBase, message)
        })
    }

    /// The registry host, with its port if any: `docker.io`, `ghcr.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry: `library/alpine`, `org/team/image`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any. `None` only when the reference was given with a digest and no tag.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<64 hex>`), if one was given. When a tag is present too, the digest
    /// is the one that identifies the image.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full name without tag or digest: `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the image lives on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DEFAULT_REGISTRY
    }

    /// The key of this image's registry in the `auths` map of `~/.docker/config.json`:
    /// `https://index.docker.io/v1/` for Docker Hub, else the registry `host[:port]`.
    pub fn auth_server(&self) -> String {
        if self.is_docker_hub() {
            DOCKER_HUB_AUTH_SERVER.to_string()
        } else {
            self.registry.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

/// Parses `s`, returning the reason (without the input) on failure.
fn parse_reference(s: &str) -> std::result::Result<ImageRef, String> {
    if s.is_empty() {
        return Err(
            "it is empty (expected e.g. \"alpine\", \"debian:bookworm\" or \
                    \"ghcr.io/org/image@sha256:…\")"
                .into(),
        );
    }
    if s.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".into());
    }
    if s.len() == 64 && s.bytes().all(is_lower_hex) {
        return Err("a 64-character hexadecimal string is an image ID, not a reference".into());
    }

    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err("the repository name is missing".into());
    }

    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    check_path(path)?;
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }

    let registry = match domain {
        None | Some(LEGACY_DEFAULT_REGISTRY) => DEFAULT_REGISTRY,
        Some(domain) => domain,
    };
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    } else {
        path.to_string()
    };
    let name_len = registry.len() + 1 + repository.len();
    if name_len > NAME_MAX_LEN {
        return Err(format!(
            "repository name too long ({name_len} characters as \"{registry}/…\", at most \
             {NAME_MAX_LEN})"
        ));
    }
    let tag = match (tag, digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (tag, _) => tag.map(str::to_string),
    };
    Ok(ImageRef {
        registry: registry.to_string(),
        repository,
        tag,
        digest: digest.map(str::to_string),
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn check_domain(domain: &str) -> std::result::Result<(), String> {
    if DOMAIN_RE.is_match(domain) {
        Ok(())
    } else {
        Err(format!(
            "invalid registry host {domain:?} (expected a host name or IP address with an \
             optional :port, e.g. \"ghcr.io\" or \"localhost:5000\")"
        ))
    }
}

fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is missing after the registry".into());
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "uppercase letters in repository name {path:?} (repository names must be lowercase)"
        ));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!(
                "empty path component in repository name {path:?} (a leading, trailing or \
                 doubled '/')"
            ));
        }
        if !COMPONENT_RE.is_match(component) {
            return Err(format!(
                "invalid path component {component:?} in repository name {path:?} (components \
                 are lowercase letters and digits, separated by '.', '_', '__' or dashes, and \
                 start and end with a letter or digit)"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    if TAG_RE.is_match(tag) {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {tag:?} (a tag is 1 to 128 letters, digits, '_', '.' or '-', and does \
             not start with '.' or '-')"
        ))
    }
}

fn check_digest(digest: &str) -> std::result::Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest {digest:?} (expected algorithm:hex, e.g. \"sha256:\" followed by 64 \
             lowercase hex characters)"
        ));
    };
    if !DIGEST_ALGORITHM_RE.is_match(algorithm) {
        return Err(format!(
            "invalid digest {digest:?} (bad algorithm {algorithm:?}; expected e.g. \"sha256\")"
        ));
    }
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "invalid digest {digest:?} (unsupported algorithm {algorithm:?}; supported: \
                 sha256, sha384, sha512)"
            ));
        }
    };
    let got = if hex.len() != expected {
        format!("got {} characters", hex.len())
    } else if !hex.bytes().all(is_lower_hex) {
        "got characters other than 0-9 and a-f".to_string()
    } else {
        return Ok(());
    };
    Err(format!(
        "invalid digest {digest:?} (a {algorithm} digest is \"{algorithm}:\" followed by exactly \
         {expected} lowercase hex characters; {got})"
    ))
}

/// A hint for inputs that look like a file path rather than an image reference.
fn path_hint(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let explicit_path =
        ["./", "../", "/", "~/"].iter().any(|p| t.starts_with(p)) || matches!(t, "." | ".." | "~");
    if explicit_path {
        return Some(
            "it looks like a file path: pass it as a Dockerfile base (Base::parse or \
             Base::dockerfile), not as an image reference"
                .into(),
        );
    }
    let file_name = t.trim_end_matches('/').rsplit('/').next().unwrap_or(t);
    let lower = file_name.to_ascii_lowercase();
    let looks_like_path = t.chars().any(char::is_whitespace)
        || t.contains('\\')
        || t.starts_with('.')
        || t.ends_with('/')
        || lower.contains("dockerfile")
        || lower.contains("containerfile");
    looks_like_path.then(|| format!("did you mean a path? Write it as ./{t}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// (input, expected normalised form)
    fn valid_cases() -> Vec<(String, String)> {
        let cases: &[(&str, &str)] = &[
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("user/img", "docker.io/user/img:latest"),
            ("user/img:v1", "docker.io/user/img:v1"),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            (
                "docker.io/library/alpine",
                "docker.io/library/alpine:latest",
            ),
            ("index.docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/user/img:1", "docker.io/user/img:1"),
            (
                "debian:bookworm-slim",
                "docker.io/library/debian:bookworm-slim",
            ),
            ("ghcr.io/org/img", "ghcr.io/org/img:latest"),
            ("ghcr.io/img", "ghcr.io/img:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            ("[fe80::1]/x:y", "[fe80::1]/x:y"),
            ("Registry.Example.com/x", "Registry.Example.com/x:latest"),
            (
                "my-registry.example.com:443/a/b/c/d/e",
                "my-registry.example.com:443/a/b/c/d/e:latest",
            ),
            ("a/b/c/d/e/f/g/h", "docker.io/a/b/c/d/e/f/g/h:latest"),
            ("a__b", "docker.io/library/a__b:latest"),
            ("a--b", "docker.io/library/a--b:latest"),
            ("a---b", "docker.io/library/a---b:latest"),
            ("a_b", "docker.io/library/a_b:latest"),
            ("a.b", "docker.io/library/a.b:latest"),
            ("a.b/c", "a.b/c:latest"),
            ("0", "docker.io/library/0:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000"),
            ("x:A_tag.with-Chars", "docker.io/library/x:A_tag.with-Chars"),
            ("x:_", "docker.io/library/x:_"),
            ("x:latest", "docker.io/library/x:latest"),
        ];
        let mut out: Vec<(String, String)> = cases
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        out.push((
            format!("alpine@{D}"),
            format!("docker.io/library/alpine@{D}"),
        ));
        out.push((format!("x:1@{D}"), format!("docker.io/library/x:1@{D}")));
        out.push((format!("host:5000/a/b@{D}"), format!("host:5000/a/b@{D}")));
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        out.push((
            format!("x@{sha512}"),
            format!("docker.io/library/x@{sha512}"),
        ));
        let tag128 = "t".repeat(128);
        out.push((
            format!("x:{tag128}"),
            format!("docker.io/library/x:{tag128}"),
        ));
        // Exactly 255 characters of name after normalisation.
        let long = "a".repeat(NAME_MAX_LEN - "docker.io/library/".len());
        out.push((long.clone(), format!("docker.io/library/{long}:latest")));
        let long = format!("h.io/{}", "b".repeat(NAME_MAX_LEN - "h.io/".len()));
        out.push((long.clone(), format!("{long}:latest")));
        out
    }

    #[test]
    fn valid_references_normalise() {
        for (input, expected) in valid_cases() {
            let r = ImageRef::parse(&input)
                .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
            assert_eq!(r.to_string(), expected, "normalising {input:?}");
            let again = ImageRef::parse(&r.to_string()).unwrap();
            assert_eq!(again, r, "re-parsing {expected:?}");
            let via_from_str: ImageRef = input.parse().unwrap();
            assert_eq!(via_from_str, r);
        }
    }

    #[test]
    fn accessors() {
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag(), r.digest()),
            ("docker.io", "library/alpine", Some("latest"), None)
        );
        assert_eq!(r.name(), "docker.io/library/alpine");
        assert!(r.is_docker_hub());
        assert_eq!(r.auth_server(), "https://index.docker.io/v1/");

        let r = ImageRef::parse(&format!("localhost:5000/a/b@{D}")).unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag(), r.digest()),
            ("localhost:5000", "a/b", None, Some(D))
        );
        assert_eq!(r.name(), "localhost:5000/a/b");
        assert!(!r.is_docker_hub());
        assert_eq!(r.auth_server(), "localhost:5000");

        let r = ImageRef::parse(&format!("ghcr.io/o/i:v2@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v2"), Some(D)));
        assert_eq!(r.auth_server(), "ghcr.io");

        assert_eq!(
            ImageRef::parse("index.docker.io/x").unwrap().auth_server(),
            DOCKER_HUB_AUTH_SERVER
        );
        assert_eq!(
            ImageRef::parse("[::1]:5000/x").unwrap().auth_server(),
            "[::1]:5000"
        );
    }

    /// (input, substrings the error message must contain)
    fn invalid_cases() -> Vec<(String, Vec<String>)> {
        let cases: &[(&str, &[&str])] = &[
            ("", &["invalid image reference \"\"", "empty"]),
            (
                "Foo/bar",
                &[
                    "invalid image reference \"Foo/bar\": uppercase letters in repository name \
                 \"Foo/bar\" (repository names must be lowercase)",
                ],
            ),
            ("Foo", &["\"Foo\"", "uppercase"]),
            ("UPPER", &["uppercase letters in repository name \"UPPER\""]),
            ("LOCALHOST/x", &["uppercase"]),
            (
                "ghcr.io/Org/img",
                &["uppercase letters in repository name \"Org/img\""],
            ),
            ("a_/b", &["invalid path component \"a_\""]),
            ("-a", &["invalid path component \"-a\""]),
            ("a-", &["invalid path component \"a-\""]),
            ("a___b", &["invalid path component \"a___b\""]),
            ("a..b", &["invalid path component \"a..b\""]),
            ("a-_b", &["invalid path component \"a-_b\""]),
            ("_a", &["invalid path component"]),
            (
                "a/",
                &[
                    "empty path component",
                    "did you mean a path? Write it as ./a/",
                ],
            ),
            ("a//b", &["empty path component"]),
            ("/a", &["empty path component", "it looks like a file path"]),
            ("ghcr.io/", &["repository name is missing"]),
            (":tag", &["repository name is missing"]),
            ("x:", &["invalid tag \"\""]),
            ("x:-a", &["invalid tag \"-a\""]),
            ("x:.a", &["invalid tag \".a\""]),
            ("x:a+b", &["invalid tag \"a+b\""]),
            ("x@", &["invalid digest \"\""]),
            (
                "x@sha256:abc",
                &["invalid digest \"sha256:abc\"", "64", "got 3 characters"],
            ),
            (
                "x@md5:0123456789abcdef0123456789abcdef",
                &["unsupported algorithm \"md5\""],
            ),
            ("x@1sha:abc", &["bad algorithm"]),
            ("x@sha256", &["invalid digest \"sha256\""]),
            ("a:b/c", &["invalid registry host \"a:b\""]),
            ("-h.io/x", &["invalid registry host \"-h.io\""]),
            ("h_.io/x", &["invalid registry host"]),
            (
                "my image",
                &["whitespace", "did you mean a path? Write it as ./my image"],
            ),
            (
                "ci/Dockerfile",
                &[
                    "uppercase",
                    "did you mean a path? Write it as ./ci/Dockerfile",
                ],
            ),
            (
                "Dockerfile.dev",
                &["did you mean a path? Write it as ./Dockerfile.dev"],
            ),
            (
                ".hidden/x",
                &["did you mean a path? Write it as ./.hidden/x"],
            ),
            ("./Dockerfile", &["it looks like a file path"]),
            ("~/x", &["it looks like a file path"]),
            ("a\\b", &["did you mean a path?"]),
            ("é", &["invalid path component"]),
            ("[::1]", &["invalid path component \"[:\""]),
        ];
        let mut out: Vec<(String, Vec<String>)> = cases
            .iter()
            .map(|(a, b)| (a.to_string(), b.iter().map(|s| s.to_string()).collect()))
            .collect();
        let upper = D.to_uppercase().replace("SHA256", "sha256");
        out.push((
            format!("x@{upper}"),
            vec!["got characters other than 0-9 and a-f".into()],
        ));
        out.push(("a".repeat(64), vec!["image ID".into()]));
        out.push((format!("x:{}", "t".repeat(129)), vec!["invalid tag".into()]));
        let long = "a".repeat(NAME_MAX_LEN - "docker.io/library/".len() + 1);
        out.push((
            long,
            vec!["repository name too long (256 characters".into()],
        ));
        let long = format!("h.io/{}", "b/".repeat(200));
        out.push((
            long.trim_end_matches('/').to_string(),
            vec!["repository name too long".into()],
        ));
        out
    }

    #[test]
    fn invalid_references_say_why() {
        for (input, needles) in invalid_cases() {
            let err = match ImageRef::parse(&input) {
                Ok(r) => panic!("{input:?} should be rejected, parsed as {r}"),
                Err(e) => e,
            };
            assert_eq!(err.kind(), ErrorKind::InvalidBase, "{input:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("invalid image reference {input:?}: ")),
                "{input:?}: {msg}"
            );
            for needle in needles {
                assert!(
                    msg.contains(&needle),
                    "{input:?}: {msg:?} should contain {needle:?}"
                );
            }
        }
    }

    #[test]
    fn no_hint_for_ordinary_mistakes() {
        let msg = ImageRef::parse("Foo/bar").unwrap_err().to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
        let msg = ImageRef::parse("x:-a").unwrap_err().to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}"
    }

    fn reference() -> impl Strategy<Value = String> {
        let domain = prop_oneof![
            Just(None),
            Just(Some("localhost")),
            Just(Some("localhost:5000")),
            Just(Some("docker.io")),
            Just(Some("index.docker.io")),
            Just(Some("ghcr.io")),
            Just(Some("Registry.Example.COM:443")),
            Just(Some("127.0.0.1:5000")),
            Just(Some("[::1]:5000")),
        ];
        let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
        let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")));
        // Without a registry, a first component with a '.' (or `localhost`) is read as one:
        // that is the grammar (`a.b/c` names registry `a.b`), so leave such inputs out here.
        (
            domain,
            proptest::collection::vec(component(), 1..5),
            tag,
            digest,
        )
            .prop_filter(
                "first component would be a registry",
                |(domain, path, _, _)| {
                    domain.is_some() || (!path[0].contains('.') && path[0] != "localhost")
                },
            )
            .prop_map(|(domain, path, tag, digest)| {
                let mut s = String::new();
                if let Some(d) = domain {
                    s.push_str(d);
                    s.push('/');
                }
                s.push_str(&path.join("/"));
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(&t);
                }
                if let Some(d) = digest {
                    s.push('@');
                    s.push_str(&d);
                }
                s
            })
    }

    proptest! {
        #[test]
        fn valid_references_parse_and_normalisation_is_idempotent(s in reference()) {
            let r = ImageRef::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let shown = r.to_string();
            let again = ImageRef::parse(&shown).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(again.to_string(), shown);
            prop_assert!(r.tag().is_some() || r.digest().is_some());
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = ImageRef::parse(&s);
        }

        #[test]
        fn whatever_parses_is_idempotent(s in "[a-zA-Z0-9:/@._\\-\\[\\] ]{0,30}") {
            if let Ok(r) = ImageRef::parse(&s) {
                let again = ImageRef::parse(&r.to_string())
                    .map_err(|e| TestCaseError::fail(format!("{s:?} -> {r}: {e}")))?;
                prop_assert_eq!(again, r);
            } else {
                let e = ImageRef::parse(&s).unwrap_err();
                prop_assert_eq!(e.kind(), ErrorKind::InvalidBase);
            }
        }
    }
}
