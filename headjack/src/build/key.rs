//! The cache key of a Dockerfile build and the image tag derived from it (docs/ARCHITECTURE.md#cache-key).
//!
//! The key is sha256 over a canonical, versioned byte stream of everything that decides the
//! result of a build, and nothing else: not mtimes, owners or where the context lives. Every
//! variable-length field is length-prefixed and every list count-prefixed, so two different
//! inputs never produce the same stream.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::context::{Context, EntryKind};

/// The schema of the key stream; bump it whenever the stream changes meaning, so old images are
/// not mistaken for new ones.
///
/// v2: exact permission bits of files and directories (v1 kept the exec bit of files only, and
/// the tar flattened modes to 0644/0755), and the ids of the build secrets.
pub(crate) const KEY_SCHEMA: &str = "headjack-build-key/v2";

/// The longest slug in an image tag.
const SLUG_MAX: usize = 40;

/// Everything the cache key is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyInputs<'a> {
    /// The Dockerfile's bytes.
    pub(crate) dockerfile: &'a [u8],
    /// Build args (sorted by the map).
    pub(crate) build_args: &'a BTreeMap<String, String>,
    /// The target stage, if any.
    pub(crate) target: Option<&'a str>,
    /// The target platform, if any.
    pub(crate) platform: Option<&'a str>,
    /// The external images read by the build: (reference as written after substitution, local
    /// image ID), in Dockerfile order.
    pub(crate) from_images: &'a [(String, String)],
    /// The ids of the build secrets given (sorted by the map's caller). Values never take
    /// part: see [`cache_key`].
    pub(crate) secret_ids: &'a [&'a str],
    /// The walked build context.
    pub(crate) context: &'a Context,
}

/// The cache key: 64 lowercase hex digits.
///
/// Build secrets take part by id only. BuildKit's own layer cache works the same way (a secret
/// is not part of a step's cache key), and the alternatives are worse: the value in clear would
/// put the secret on disk and in a tag; a keyed digest of it would rebuild on every rotation of a
/// short-lived token (a CI job's token changes each run) for images whose content does not depend
/// on the token. Whether a secret is given does change what a build can do, hence the ids.
/// When a secret's value does change the result, pass a build arg naming its version or build
/// with `no_cache`.
pub(crate) fn cache_key(inputs: &KeyInputs<'_>) -> String {
    let mut s = Stream(Sha256::new());
    s.bytes(KEY_SCHEMA.as_bytes());

    s.field("dockerfile");
    s.bytes(inputs.dockerfile);

    s.field("build-args");
    s.count(inputs.build_args.len());
    for (name, value) in inputs.build_args {
        s.bytes(name.as_bytes());
        s.bytes(value.as_bytes());
    }

    s.field("target");
    s.optional(inputs.target);
    s.field("platform");
    s.optional(inputs.platform);

    s.field("from-images");
    s.count(inputs.from_images.len());
    for (reference, id) in inputs.from_images {
        s.bytes(reference.as_bytes());
        s.bytes(id.as_bytes());
    }

    s.field("secret-ids");
    s.count(inputs.secret_ids.len());
    for id in inputs.secret_ids {
        s.bytes(id.as_bytes());
    }

    let context = inputs.context;
    s.field("context");
    // Where the Dockerfile is in the tar matters: the builder drops it from the context when the
    // ignore file excludes it.
    s.tag(u8::from(context.dockerfile_in_context()));
    s.bytes(context.dockerfile_name_in_tar().as_bytes());
    s.count(context.entries().len());
    for entry in context.entries() {
        s.bytes(entry.rel_path.as_bytes());
        match entry.kind {
            EntryKind::File => {
                s.tag(b'f');
                s.count_u64(u64::from(entry.mode));
                s.count_u64(entry.size);
                s.raw(&entry.digest.unwrap_or_default());
            }
            EntryKind::Dir => {
                s.tag(b'd');
                s.count_u64(u64::from(entry.mode));
            }
            EntryKind::Symlink => {
                s.tag(b'l');
                s.bytes(entry.link_target.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
    hex::encode(s.0.finalize())
}

/// The tag for a build: `localhost/headjack/<slug>:<key[..16]>`.
///
/// The slug names the build for people listing images: the Dockerfile's directory name, plus
/// what the file name adds to "Dockerfile"/"Containerfile" (`ci/dev.Dockerfile` → `ci-dev`),
/// lowercased, reduced to `[a-z0-9]+` runs joined by `-`, at most 40 characters, `build` when
/// nothing is left. Pass an absolute path; a bare `Dockerfile` has no directory name.
pub(crate) fn image_tag(dockerfile_path: &Path, key: &str) -> String {
    let short = key.get(..16).unwrap_or(key);
    format!("localhost/headjack/{}:{short}", slug(dockerfile_path))
}

/// The repository-name slug of [`image_tag`].
fn slug(dockerfile_path: &Path) -> String {
    let lower = |s: &std::ffi::OsStr| s.to_string_lossy().to_lowercase();
    let dir = dockerfile_path
        .parent()
        .and_then(Path::file_name)
        .map(lower)
        .unwrap_or_default();
    let file = dockerfile_path.file_name().map(lower).unwrap_or_default();
    // "Dockerfile" says nothing; what is around it ("dev" in dev.Dockerfile) does.
    let file = file
        .replace("dockerfile", " ")
        .replace("containerfile", " ");
    let mut words: Vec<&str> = Vec::new();
    for word in [dir.as_str(), file.as_str()]
        .into_iter()
        .flat_map(|s| s.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty())
    {
        if words.last() != Some(&word) {
            words.push(word);
        }
    }
    let mut slug = words.join("-");
    slug.truncate(SLUG_MAX);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "build".to_string()
    } else {
        slug.to_string()
    }
}

/// The canonical stream, fed straight into the hasher.
struct Stream(Sha256);

impl Stream {
    /// Bytes as they are (fixed-length fields only).
    fn raw(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// A one-byte tag or flag.
    fn tag(&mut self, tag: u8) {
        self.0.update([tag]);
    }

    /// A length or count, as 8 bytes big-endian.
    fn count_u64(&mut self, n: u64) {
        self.0.update(n.to_be_bytes());
    }

    /// A list length.
    fn count(&mut self, n: usize) {
        self.count_u64(n as u64);
    }

    /// A variable-length field: its length, then its bytes.
    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.raw(bytes);
    }

    /// The name of the next section (keeps the stream readable when it is debugged).
    fn field(&mut self, name: &str) {
        self.bytes(name.as_bytes());
    }

    /// An optional string: absent and empty differ.
    fn optional(&mut self, value: Option<&str>) {
        match value {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                self.bytes(v.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::context::tests::{tree, write_tree};
    use proptest::prelude::*;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// The key of the context at `dir` (Dockerfile `dir/Dockerfile`) with default inputs.
    fn key_of(dir: &Path) -> String {
        key_with(dir, &BTreeMap::new(), None, &[])
    }

    fn key_with(
        dir: &Path,
        args: &BTreeMap<String, String>,
        target: Option<&str>,
        from: &[(String, String)],
    ) -> String {
        let context = Context::walk(dir, &dir.join("Dockerfile")).unwrap();
        cache_key(&KeyInputs {
            dockerfile: context.dockerfile_bytes(),
            build_args: args,
            target,
            platform: None,
            from_images: from,
            secret_ids: &[],
            context: &context,
        })
    }

    const FILES: &[(&str, &str)] = &[
        ("Dockerfile", "FROM alpine\nCOPY . /app\n"),
        (".dockerignore", "*.log\n"),
        ("src/main.rs", "fn main() {}\n"),
        ("run.sh", "#!/bin/sh\n"),
        ("debug.log", "noise"),
    ];

    #[test]
    fn key_is_hex_and_stable_across_locations_and_mtimes() {
        let a = tree(FILES);
        let b = tree(FILES);
        let key = key_of(a.path());
        assert_eq!(key.len(), 64);
        assert!(
            key.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        fs::File::options()
            .write(true)
            .open(b.path().join("src/main.rs"))
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(key_of(b.path()), key);
        // Walking twice gives the same key.
        assert_eq!(key_of(a.path()), key);
    }

    #[test]
    fn key_changes_with_every_input_that_matters() {
        let dir = tree(FILES);
        let root = dir.path();
        let base = key_of(root);
        let mut seen = vec![base.clone()];
        let mut expect_new = |key: String, what: &str| {
            assert!(!seen.contains(&key), "{what} did not change the key");
            seen.push(key);
        };

        // Build args, target, FROM image IDs.
        let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
        expect_new(key_with(root, &args, None, &[]), "a build arg");
        let args2 = BTreeMap::from([("A".to_string(), "2".to_string())]);
        expect_new(key_with(root, &args2, None, &[]), "a build arg value");
        expect_new(
            key_with(root, &BTreeMap::new(), Some("test"), &[]),
            "a target",
        );
        expect_new(
            key_with(root, &BTreeMap::new(), Some(""), &[]),
            "an empty target",
        );
        let from = |id: &str| vec![("alpine".to_string(), id.to_string())];
        expect_new(
            key_with(root, &BTreeMap::new(), None, &from("sha256:1")),
            "a FROM image",
        );
        expect_new(
            key_with(root, &BTreeMap::new(), None, &from("sha256:2")),
            "a FROM image ID",
        );

        // A change in an excluded file changes nothing.
        fs::write(root.join("debug.log"), "other noise").unwrap();
        assert_eq!(key_of(root), base);

        // One byte of content.
        fs::write(root.join("src/main.rs"), "fn main() {}\r").unwrap();
        expect_new(key_of(root), "one byte");
        fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        assert_eq!(key_of(root), base);

        // Every permission bit of files and directories (docker build keeps them all).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let original = fs::metadata(root.join("run.sh")).unwrap().permissions();
            for mode in [0o755, 0o600, 0o640, 0o4755, 0o2755, 0o1755] {
                fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(mode)).unwrap();
                expect_new(key_of(root), &format!("mode {mode:o}"));
            }
            fs::set_permissions(root.join("run.sh"), original).unwrap();
            assert_eq!(key_of(root), base);
            let dir_mode = fs::metadata(root.join("src")).unwrap().permissions();
            fs::set_permissions(root.join("src"), fs::Permissions::from_mode(0o700)).unwrap();
            expect_new(key_of(root), "a directory's mode");
            fs::set_permissions(root.join("src"), dir_mode).unwrap();
            assert_eq!(key_of(root), base);
        }

        // A newly un-ignored file.
        fs::write(root.join(".dockerignore"), "*.log\n!debug.log\n").unwrap();
        expect_new(key_of(root), "an un-ignored file");
        fs::write(root.join(".dockerignore"), "*.log\n").unwrap();
        assert_eq!(key_of(root), base);

        // A new empty directory, a renamed file, a symlink.
        fs::create_dir(root.join("empty")).unwrap();
        expect_new(key_of(root), "an empty directory");
        fs::remove_dir(root.join("empty")).unwrap();
        fs::rename(root.join("run.sh"), root.join("run2.sh")).unwrap();
        expect_new(key_of(root), "a rename");
        fs::rename(root.join("run2.sh"), root.join("run.sh")).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("src/main.rs", root.join("link")).unwrap();
            expect_new(key_of(root), "a symlink");
            fs::remove_file(root.join("link")).unwrap();
            std::os::unix::fs::symlink("src", root.join("link")).unwrap();
            expect_new(key_of(root), "a symlink target");
            fs::remove_file(root.join("link")).unwrap();
        }
        assert_eq!(key_of(root), base);

        // The Dockerfile itself.
        fs::write(root.join("Dockerfile"), "FROM alpine\nCOPY . /app/\n").unwrap();
        expect_new(key_of(root), "the Dockerfile");
    }

    #[test]
    fn outside_dockerfile_is_keyed_by_its_bytes() {
        let ctx_dir = tree(&[("a", "a")]);
        let df_a = tree(&[("Dockerfile", "FROM alpine\n")]);
        let df_b = tree(&[("Dockerfile", "FROM alpine\n")]);
        let key = |df: &Path| {
            let context = Context::walk(ctx_dir.path(), &df.join("Dockerfile")).unwrap();
            cache_key(&KeyInputs {
                dockerfile: context.dockerfile_bytes(),
                build_args: &BTreeMap::new(),
                target: None,
                platform: None,
                from_images: &[],
                secret_ids: &[],
                context: &context,
            })
        };
        let k = key(df_a.path());
        assert_eq!(key(df_b.path()), k);
        fs::write(df_b.path().join("Dockerfile"), "FROM debian\n").unwrap();
        assert_ne!(key(df_b.path()), k);
    }

    /// A small context shared by the property tests.
    fn shared_context() -> &'static Context {
        static CONTEXT: OnceLock<(PathBuf, Context)> = OnceLock::new();
        &CONTEXT
            .get_or_init(|| {
                let dir = tempfile::tempdir().unwrap().keep();
                write_tree(&dir, &[("Dockerfile", "FROM alpine\n"), ("a", "a")]);
                let context = Context::walk(&dir, &dir.join("Dockerfile")).unwrap();
                (dir, context)
            })
            .1
    }

    fn key_for(
        args: &BTreeMap<String, String>,
        target: Option<&str>,
        platform: Option<&str>,
        from: &[(String, String)],
    ) -> String {
        key_with_secrets(args, target, platform, from, &[])
    }

    fn key_with_secrets(
        args: &BTreeMap<String, String>,
        target: Option<&str>,
        platform: Option<&str>,
        from: &[(String, String)],
        secret_ids: &[&str],
    ) -> String {
        cache_key(&KeyInputs {
            dockerfile: b"FROM alpine\n",
            build_args: args,
            target,
            platform,
            from_images: from,
            secret_ids,
            context: shared_context(),
        })
    }

    #[test]
    fn secret_ids_take_part_and_are_separated() {
        let none = BTreeMap::new();
        let k = |ids: &[&str]| key_with_secrets(&none, None, None, &[], ids);
        assert_ne!(k(&[]), k(&["a"]));
        assert_ne!(k(&["a"]), k(&["b"]));
        assert_ne!(k(&["ab"]), k(&["a", "b"]));
        assert_eq!(k(&["a", "b"]), k(&["a", "b"]));
        // A secret id is not a build arg of the same name.
        let args = BTreeMap::from([("a".to_string(), String::new())]);
        assert_ne!(k(&["a"]), key_for(&args, None, None, &[]));
    }

    #[test]
    fn length_prefixes_separate_fields() {
        let args = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_ne!(
            key_for(&args(&[("a", "bc")]), None, None, &[]),
            key_for(&args(&[("ab", "c")]), None, None, &[])
        );
        assert_ne!(
            key_for(&args(&[]), Some("x"), None, &[]),
            key_for(&args(&[]), None, Some("x"), &[])
        );
        assert_ne!(
            key_for(&args(&[]), None, None, &[]),
            key_for(&args(&[]), Some(""), None, &[])
        );
        let from = |r: &str, id: &str| vec![(r.to_string(), id.to_string())];
        assert_ne!(
            key_for(&args(&[]), None, None, &from("a", "bc")),
            key_for(&args(&[]), None, None, &from("ab", "c"))
        );
    }

    proptest! {
        #[test]
        fn different_args_give_different_keys(
            a in prop::collection::btree_map("[ab=]{0,3}", "[ab=]{0,3}", 0..4),
            b in prop::collection::btree_map("[ab=]{0,3}", "[ab=]{0,3}", 0..4),
        ) {
            prop_assert_eq!(key_for(&a, None, None, &[]) == key_for(&b, None, None, &[]), a == b);
        }

        #[test]
        fn different_from_images_give_different_keys(
            a in prop::collection::vec(("[ab:]{0,3}", "[ab:]{0,3}"), 0..3),
            b in prop::collection::vec(("[ab:]{0,3}", "[ab:]{0,3}"), 0..3),
            ta in prop::option::of("[ab]{0,2}"),
            tb in prop::option::of("[ab]{0,2}"),
        ) {
            let none = BTreeMap::new();
            let same = key_for(&none, ta.as_deref(), None, &a) == key_for(&none, tb.as_deref(), None, &b);
            prop_assert_eq!(same, a == b && ta == tb);
        }
    }

    #[test]
    fn image_tags() {
        let key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for (path, want) in [
            (
                "/home/me/My App/Dockerfile",
                "localhost/headjack/my-app:0123456789abcdef",
            ),
            (
                "/src/proj/ci/dev.Dockerfile",
                "localhost/headjack/ci-dev:0123456789abcdef",
            ),
            (
                "/src/proj/Dockerfile.test",
                "localhost/headjack/proj-test:0123456789abcdef",
            ),
            (
                "/src/proj/Containerfile",
                "localhost/headjack/proj:0123456789abcdef",
            ),
            (
                "/images/base/Dockerfile",
                "localhost/headjack/base:0123456789abcdef",
            ),
            (
                "/x/dev/dev.Dockerfile",
                "localhost/headjack/dev:0123456789abcdef",
            ),
            ("/Dockerfile", "localhost/headjack/build:0123456789abcdef"),
            ("Dockerfile", "localhost/headjack/build:0123456789abcdef"),
            (
                "/tmp/Ünïcödé__/Dockerfile",
                "localhost/headjack/n-c-d:0123456789abcdef",
            ),
            (
                "/tmp/_-_/DOCKERFILE",
                "localhost/headjack/build:0123456789abcdef",
            ),
        ] {
            assert_eq!(image_tag(Path::new(path), key), want, "{path}");
        }
        let long = format!("/{}/Dockerfile", "a-very-long-directory-name-".repeat(3));
        let tag = image_tag(Path::new(&long), key);
        let slug = tag
            .strip_prefix("localhost/headjack/")
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert!(
            slug.len() <= 40 && !slug.ends_with('-') && !slug.is_empty(),
            "{slug}"
        );
        // Every slug is a valid repository path component.
        let re = regex::Regex::new("^[a-z0-9]+(-[a-z0-9]+)*$").unwrap();
        assert!(re.is_match(slug));
    }
}
