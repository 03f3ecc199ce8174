//! Bases: what an instance's container is made from — the default base, a registry image or a
//! Dockerfile — and the rules that classify a base string (docs/ARCHITECTURE.md#base-strings).
//!
//! [`Base::image`], [`Base::dockerfile`] and [`Base::default`] never guess. [`Base::parse`]
//! classifies a string:
//!
//! 1. empty (after trimming) → [`Base::Default`];
//! 2. a dev container definition → [`Base::DevContainer`]: the last path component ends in
//!    `devcontainer.json` (`.devcontainer/devcontainer.json`, `.devcontainer.json`,
//!    `.devcontainer/<name>/devcontainer.json`) or is `.devcontainer`, or an explicit path to a
//!    directory holding a definition and no `Dockerfile`/`Containerfile` of its own;
//! 3. a file name (last path component) that ends in `Dockerfile` or `Containerfile`, or is
//!    `Dockerfile.<x>` / `Containerfile.<x>` (case-insensitive) → a Dockerfile, which must exist;
//! 4. starting with `./`, `../`, `/` or `~/` (or exactly `.`, `..`, `~`) → a path: the Dockerfile
//!    at that path, which must exist (any file name);
//! 5. anything else → an image reference ([`ImageRef::parse`]).
//!
//! For 2 to 4, relative paths resolve against the base directory (`~/` against `$HOME`), and a
//! path that is a directory means the `Dockerfile` (else the `Containerfile`) inside it.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};
use crate::reference::ImageRef;

/// The file names looked for, in order, when a base path is a directory.
pub const DOCKERFILE_NAMES: [&str; 2] = ["Dockerfile", "Containerfile"];

/// What an instance's container is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Base {
    /// The default base: `HEADJACK_BASE` if set, else the embedded `images/base/Dockerfile`
    /// (resolved at launch, not here).
    #[default]
    Default,
    /// A registry image, pulled if missing (according to the pull policy).
    Image(ImageRef),
    /// A Dockerfile, built before launch (once per content).
    Dockerfile(Dockerfile),
    /// A dev container definition (`devcontainer.json`): its image or Dockerfile, plus what
    /// it says about the container (environment, users, mounts, hooks, …), applied at spawn.
    DevContainer(DevContainer),
}

/// A dev container definition found on disk (see [`Base::parse`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DevContainer {
    pub(crate) config_file: PathBuf,
    pub(crate) workspace: PathBuf,
}

impl DevContainer {
    /// Finds the definition `path` names — a `devcontainer.json` (any file whose name ends
    /// so), a `.devcontainer` folder, or a folder holding `.devcontainer/devcontainer.json`,
    /// `.devcontainer.json` or a single `.devcontainer/<name>/devcontainer.json` — relative
    /// paths against `base_dir`. Nothing is read beyond the directory listing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidBase`] when there is no definition there, or several to choose from
    /// (the message lists them).
    pub fn find(path: impl AsRef<Path>, base_dir: &Path) -> Result<DevContainer> {
        let d = crate::devcontainer::discover(path.as_ref(), base_dir)?;
        Ok(DevContainer {
            config_file: d.config_file,
            workspace: d.workspace,
        })
    }

    /// The `devcontainer.json` (absolute).
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The workspace folder it describes (absolute): mounted into the container unless the
    /// spec names another workspace.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }
}

impl Base {
    /// Classifies a base string (see the [module docs](self)); relative paths resolve against
    /// the process's current directory.
    ///
    /// Errors are [`ErrorKind::InvalidBase`] (an [`ErrorKind::Io`] only when a relative path
    /// needs the current directory and it cannot be determined).
    pub fn parse(s: &str) -> Result<Base> {
        parse_impl(s, None, home_dir().as_deref())
    }

    /// Classifies a base string (see the [module docs](self)); relative paths resolve against
    /// `base_dir` (itself made absolute against the current directory if it is relative).
    ///
    /// A Dockerfile found this way has an absolute, lexically normalised path and no explicit
    /// context (so its context is its directory).
    pub fn parse_in(s: &str, base_dir: &Path) -> Result<Base> {
        parse_impl(s, Some(base_dir), home_dir().as_deref())
    }

    /// A registry image, without guessing: `s` must be a valid image reference.
    pub fn image(s: &str) -> Result<Base> {
        ImageRef::parse(s).map(Base::Image)
    }

    /// A Dockerfile at `path`, taken as given: no existence check, no guessing, no resolution
    /// (see [`Dockerfile::resolve_paths`]). Configure it with the builder methods, then turn it
    /// into a `Base` with `.into()`.
    pub fn dockerfile(path: impl Into<PathBuf>) -> Dockerfile {
        Dockerfile::new(path)
    }

    /// The dev container definition, if this is one.
    pub fn as_devcontainer(&self) -> Option<&DevContainer> {
        match self {
            Base::DevContainer(d) => Some(d),
            _ => None,
        }
    }

    /// Whether this is the default base.
    pub fn is_default(&self) -> bool {
        matches!(self, Base::Default)
    }

    /// The image reference, if this is an image base.
    pub fn as_image(&self) -> Option<&ImageRef> {
        match self {
            Base::Image(r) => Some(r),
            _ => None,
        }
    }

    /// The Dockerfile, if this is a Dockerfile base.
    pub fn as_dockerfile(&self) -> Option<&Dockerfile> {
        match self {
            Base::Dockerfile(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for Base {
    /// `default`, the normalised image reference, or the Dockerfile's path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Default => f.write_str("default"),
            Base::Image(r) => fmt::Display::fmt(r, f),
            Base::Dockerfile(d) => write!(f, "{}", d.path.display()),
            Base::DevContainer(d) => write!(f, "{}", d.config_file.display()),
        }
    }
}

impl FromStr for Base {
    type Err = Error;

    /// Same as [`Base::parse`].
    fn from_str(s: &str) -> Result<Self> {
        Base::parse(s)
    }
}

impl From<ImageRef> for Base {
    fn from(r: ImageRef) -> Self {
        Base::Image(r)
    }
}

impl From<Dockerfile> for Base {
    fn from(d: Dockerfile) -> Self {
        Base::Dockerfile(d)
    }
}

/// A Dockerfile to build, with its build options.
///
/// ```
/// use headjack::base::{Base, Dockerfile, SecretSource};
///
/// let base: Base = Base::dockerfile("ci/dev.Dockerfile")
///     .context(".")
///     .build_arg("VERSION", "1.2")
///     .target("dev")
///     .secret("npm_token", SecretSource::Env("NPM_TOKEN".into()))
///     .into();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dockerfile {
    path: PathBuf,
    context: Option<PathBuf>,
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    platform: Option<String>,
    no_cache: bool,
    secrets: BTreeMap<String, SecretSource>,
    builder: Builder,
}

/// Where a build secret's value comes from. The value is read when a build needs it (never on
/// a cache hit), handed to the engine's builder for `RUN --mount=type=secret,id=…` steps, and
/// kept out of layers, history, labels, headjack's cache records, progress lines, logs and
/// errors.
///
/// `Debug` shows the source (file path, variable name) but never a value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// The value itself.
    Memory(Vec<u8>),
    /// The content of a file, read at build time.
    File(PathBuf),
    /// An environment variable of this process, read at build time.
    Env(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Memory(v) => write!(f, "Memory(<{} bytes>)", v.len()),
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
            SecretSource::Env(n) => f.debug_tuple("Env").field(n).finish(),
        }
    }
}

impl SecretSource {
    /// The value, read now.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` naming the secret's id and its source when a variable is unset or a
    /// file cannot be read (never showing a value).
    pub fn read(&self, id: &str) -> Result<Vec<u8>> {
        match self {
            SecretSource::Memory(v) => Ok(v.clone()),
            SecretSource::File(p) => std::fs::read(p).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "build secret {id}: cannot read {}: {e}; check the path given for it",
                        p.display()
                    ),
                )
                .with_source(e)
            }),
            SecretSource::Env(name) => std::env::var_os(name)
                .map(std::ffi::OsString::into_encoded_bytes)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "build secret {id}: the environment variable {name} is not set; set \
                             it or give the secret another source"
                        ),
                    )
                }),
        }
    }
}

/// Which builder builds a Dockerfile.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Builder {
    /// BuildKit where the engine offers it (Docker), else the engine's classic builder
    /// (Podman's buildah, or Docker engines without BuildKit).
    #[default]
    Auto,
    /// BuildKit; on an engine without it, the classic builder (as [`Builder::Auto`]).
    BuildKit,
    /// The classic builder, even where BuildKit is available (no secrets, no `RUN --mount`,
    /// no `COPY --chmod` on Docker).
    Classic,
}

impl Dockerfile {
    /// A Dockerfile at `path` (as given; see [`Dockerfile::resolve_paths`]), with no options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Dockerfile {
            path: path.into(),
            context: None,
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            no_cache: false,
            secrets: BTreeMap::new(),
            builder: Builder::Auto,
        }
    }

    /// Sets the build context directory (default: the Dockerfile's directory). The Dockerfile
    /// may lie outside it.
    pub fn context(mut self, dir: impl Into<PathBuf>) -> Self {
        self.context = Some(dir.into());
        self
    }

    /// Sets a build argument (`--build-arg key=value`); a later value for a key replaces an
    /// earlier one.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Builds up to this stage (`--target`).
    pub fn target(mut self, stage: impl Into<String>) -> Self {
        self.target = Some(stage.into());
        self
    }

    /// Builds for this platform (`--platform`, e.g. `linux/amd64`).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = Some(platform.into());
        self
    }

    /// Ignores the engine's layer cache and headjack's build cache (`--no-cache`).
    pub fn no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Makes a build secret available to `RUN --mount=type=secret,id=<id>` steps; a later source
    /// for an id replaces an earlier one. The id takes part in the cache key, the value never
    /// does (see the README's "Build secrets"): changing only a secret's value reuses the image
    /// built with the old one; use [`Dockerfile::no_cache`] or a build arg to force a rebuild.
    ///
    /// Ids are 1 to 128 characters from `A-Z a-z 0-9 _ . -`; others are refused when the
    /// Dockerfile is resolved.
    pub fn secret(mut self, id: impl Into<String>, source: SecretSource) -> Self {
        self.secrets.insert(id.into(), source);
        self
    }

    /// Chooses the builder (default [`Builder::Auto`]). The choice is not part of the cache
    /// key: an image built by either builder serves both.
    pub fn builder(mut self, builder: Builder) -> Self {
        self.builder = builder;
        self
    }

    /// The build secrets by id (sources only; values are read at build time).
    pub fn secrets(&self) -> &BTreeMap<String, SecretSource> {
        &self.secrets
    }

    /// The chosen builder.
    pub fn builder_choice(&self) -> Builder {
        self.builder
    }

    /// The Dockerfile's path (as given, or absolute once resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The build context: the explicit one if set, else the Dockerfile's directory (`.` for a
    /// bare relative file name).
    pub fn context_dir(&self) -> &Path {
        if let Some(context) = &self.context {
            return context;
        }
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }

    /// The explicitly set context, if any.
    pub fn explicit_context(&self) -> Option<&Path> {
        self.context.as_deref()
    }

    /// The build arguments, sorted by name.
    pub fn build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }

    /// The target stage, if set.
    pub fn target_stage(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The target platform, if set.
    pub fn platform_name(&self) -> Option<&str> {
        self.platform.as_deref()
    }

    /// Whether caches are to be ignored.
    pub fn is_no_cache(&self) -> bool {
        self.no_cache
    }

    /// Makes the path and the explicit context absolute and lexically normalised: `~/` expands
    /// to `$HOME`, relative paths resolve against `base_dir` (itself made absolute against the
    /// current directory if it is relative). Does not touch the file system.
    ///
    /// If `$HOME` is not set, a leading `~` is left as an ordinary directory name.
    pub fn resolve_paths(self, base_dir: &Path) -> Dockerfile {
        let home = home_dir();
        self.resolve_paths_with(base_dir, home.as_deref())
    }

    fn resolve_paths_with(mut self, base_dir: &Path, home: Option<&Path>) -> Dockerfile {
        let base_dir = absolute_lossy(base_dir);
        self.path = absolutize(&self.path, &base_dir, home);
        self.context = self.context.map(|c| absolutize(&c, &base_dir, home));
        self
    }
}

/// `$HOME`, if set and not empty.
fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Whether a file name names a Dockerfile by itself (rule 2).
fn is_dockerfile_name(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    ["dockerfile", "containerfile"].iter().any(|stem| {
        lower.ends_with(stem)
            || lower
                .strip_prefix(stem)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|ext| !ext.is_empty())
    })
}

/// Whether a base string is explicitly a path (rule 3).
fn is_explicit_path(s: &str) -> bool {
    ["./", "../", "/", "~/"].iter().any(|p| s.starts_with(p)) || matches!(s, "." | ".." | "~")
}

/// Lexically normalises an absolute or relative path: drops `.` components, resolves `..`
/// against the preceding component (never above the root), keeps leading `..` of a relative
/// path.
pub(crate) fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            Component::Normal(name) => out.push(name),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Expands a leading `~` component to `home`, if given.
fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) if !rest.as_os_str().is_empty() => home.join(rest),
        (Ok(_), Some(home)) => home.to_path_buf(),
        _ => path.to_path_buf(),
    }
}

/// `path` made absolute against the current directory (when it can be), normalised.
fn absolute_lossy(path: &Path) -> PathBuf {
    normalize_path(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// `path` with `~` expanded, resolved against the absolute `base_dir`, normalised.
fn absolutize(path: &Path, base_dir: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = expand_tilde(path, home);
    if expanded.is_absolute() {
        normalize_path(&expanded)
    } else {
        normalize_path(&base_dir.join(expanded))
    }
}

fn invalid(s: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidBase, format!("invalid base {s:?}: {why}"))
}

fn parse_impl(s: &str, base_dir: Option<&Path>, home: Option<&Path>) -> Result<Base> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Base::Default);
    }
    let dir_or_cwd = match base_dir {
        Some(dir) => Some(absolute_lossy(dir)),
        None => std::env::current_dir().ok(),
    };
    if let Some(dir) = &dir_or_cwd
        && crate::devcontainer::is_devcontainer_base(t, dir, home)
    {
        return DevContainer::find(t, dir)
            .map(Base::DevContainer)
            .map_err(|e| e.context(format!("invalid base {t:?}")));
    }
    let explicit = is_explicit_path(t);
    let file_name = t.trim_end_matches('/').rsplit('/').next().unwrap_or(t);
    if !explicit && !is_dockerfile_name(file_name) {
        return ImageRef::parse(t).map(Base::Image);
    }

    // A path: resolve it.
    let raw = Path::new(t);
    let expanded = if raw.starts_with("~") {
        let Some(home) = home else {
            return Err(invalid(t, "cannot expand \"~\": HOME is not set"));
        };
        expand_tilde(raw, Some(home))
    } else {
        raw.to_path_buf()
    };
    let (path, relative_to) = if expanded.is_absolute() {
        (normalize_path(&expanded), None)
    } else {
        let dir = match base_dir {
            Some(dir) => absolute_lossy(dir),
            None => std::env::current_dir()
                .map(|d| normalize_path(&d))
                .map_err(|e| {
                    Error::io(
                        format!(
                            "invalid base {t:?}: cannot resolve a relative path without the \
                             current directory"
                        ),
                        e,
                    )
                })?,
        };
        (normalize_path(&dir.join(&expanded)), Some(dir))
    };
    let resolved_note = match &relative_to {
        Some(dir) => format!(" (relative paths are resolved against {})", dir.display()),
        None => String::new(),
    };

    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Base::Dockerfile(Dockerfile::new(path))),
        Ok(meta) if meta.is_dir() => {
            for name in DOCKERFILE_NAMES {
                let candidate = path.join(name);
                if candidate.is_file() {
                    return Ok(Base::Dockerfile(Dockerfile::new(candidate)));
                }
            }
            Err(invalid(
                t,
                format!(
                    "{} is a directory with no Dockerfile or Containerfile in it{resolved_note}",
                    path.display()
                ),
            ))
        }
        Ok(_) => Err(invalid(
            t,
            format!("{} is not a regular file{resolved_note}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut why = if explicit {
                format!("the file {} does not exist{resolved_note}", path.display())
            } else {
                format!(
                    "the Dockerfile {} does not exist{resolved_note}",
                    path.display()
                )
            };
            if let (false, Ok(image)) = (explicit, ImageRef::parse(t)) {
                why.push_str(&format!(
                    "; if you meant the image {image}, write it with a tag (\"{t}:latest\") or \
                     use Base::image"
                ));
            }
            Err(invalid(t, why))
        }
        Err(e) => Err(invalid(t, format!("cannot access {}: {e}", path.display())).with_source(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs;

    enum Want {
        Default,
        Image(&'static str),
        /// Path relative to the fixture root.
        File(&'static str),
        /// Substrings of the message; `{root}` is replaced by the fixture root.
        Err(&'static [&'static str]),
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        home: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        // Canonicalise so that expected paths match even if the temp dir is behind a symlink.
        let root = tmp.path().canonicalize().unwrap().join("root");
        let home = tmp.path().canonicalize().unwrap().join("home");
        let files = [
            "Dockerfile.dev",
            "dev.Dockerfile",
            "ci/Containerfile",
            "DOCKERFILE",
            "existing-file-with-any-name",
            "my dir/Dockerfile",
            "x/Dockerfile",
            "withdf/Dockerfile",
            "withdf/Containerfile",
            "withcf/Containerfile",
            "sub/keep",
            "empty/not-a-dockerfile",
            "../home/proj/Dockerfile",
            "../home/proj.Containerfile",
        ];
        for f in files {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "FROM scratch\n").unwrap();
        }
        Fixture {
            _tmp: tmp,
            root,
            home,
        }
    }

    fn check(fx: &Fixture, input: &str, base_dir: &Path, want: &Want) {
        let got = parse_impl(input, Some(base_dir), Some(&fx.home));
        let root = fx.root.display().to_string();
        match (want, got) {
            (Want::Default, Ok(Base::Default)) => {}
            (Want::Image(r), Ok(Base::Image(got))) => assert_eq!(got.to_string(), *r, "{input:?}"),
            (Want::File(rel), Ok(Base::Dockerfile(d))) => {
                let expected = normalize_path(&fx.root.join(rel));
                assert_eq!(d.path(), expected, "{input:?}");
                assert!(d.path().is_absolute());
                assert_eq!(d.context_dir(), expected.parent().unwrap(), "{input:?}");
                assert_eq!(d.explicit_context(), None);
            }
            (Want::Err(needles), Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::InvalidBase, "{input:?}: {e}");
                let msg = e.to_string();
                for needle in needles.iter() {
                    let needle = needle.replace("{root}", &root);
                    assert!(
                        msg.contains(&needle),
                        "{input:?}: {msg:?} should contain {needle:?}"
                    );
                }
            }
            (_, got) => panic!("{input:?}: unexpected {got:?}"),
        }
    }

    #[test]
    fn classification_table() {
        let fx = fixture();
        let root = fx.root.as_path();
        let sub = fx.root.join("sub");
        let withdf = fx.root.join("withdf");
        use Want::*;
        let cases: &[(&str, &Path, Want)] = &[
            ("", root, Default),
            ("   \t\n", root, Default),
            ("alpine", root, Image("docker.io/library/alpine:latest")),
            (
                "  debian:bookworm  ",
                root,
                Image("docker.io/library/debian:bookworm"),
            ),
            ("localhost:5000/x:1", root, Image("localhost:5000/x:1")),
            (
                "ghcr.io/org/dockerfile:1",
                root,
                Image("ghcr.io/org/dockerfile:1"),
            ),
            // By name.
            ("Dockerfile.dev", root, File("Dockerfile.dev")),
            ("dev.Dockerfile", root, File("dev.Dockerfile")),
            ("ci/Containerfile", root, File("ci/Containerfile")),
            ("DOCKERFILE", root, File("DOCKERFILE")),
            ("my dir/Dockerfile", root, File("my dir/Dockerfile")),
            ("../x/Dockerfile", &sub, File("x/Dockerfile")),
            ("./x/../x/./Dockerfile", root, File("x/Dockerfile")),
            ("~/proj/Dockerfile", root, File("../home/proj/Dockerfile")),
            (
                "~/proj.Containerfile",
                root,
                File("../home/proj.Containerfile"),
            ),
            (
                "missing.Dockerfile",
                root,
                Err(&[
                    "invalid base \"missing.Dockerfile\"",
                    "{root}/missing.Dockerfile does not exist",
                    "relative paths are resolved against {root}",
                ]),
            ),
            (
                "org/dockerfile",
                root,
                Err(&[
                    "{root}/org/dockerfile does not exist",
                    "docker.io/org/dockerfile:latest",
                ]),
            ),
            // Explicit paths.
            (
                "./missing/Dockerfile",
                root,
                Err(&[
                    "\"./missing/Dockerfile\"",
                    "{root}/missing/Dockerfile does not exist",
                ]),
            ),
            (
                "./existing-file-with-any-name",
                root,
                File("existing-file-with-any-name"),
            ),
            (
                "  ./existing-file-with-any-name ",
                root,
                File("existing-file-with-any-name"),
            ),
            (
                "./does-not-exist",
                root,
                Err(&["the file {root}/does-not-exist does not exist"]),
            ),
            (
                "../existing-file-with-any-name",
                &sub,
                File("existing-file-with-any-name"),
            ),
            // Directories.
            ("./withdf", root, File("withdf/Dockerfile")),
            ("./withdf/", root, File("withdf/Dockerfile")),
            ("./withcf", root, File("withcf/Containerfile")),
            (".", &withdf, File("withdf/Dockerfile")),
            (
                "..",
                &sub,
                Err(&["{root} is a directory with no Dockerfile or Containerfile"]),
            ),
            ("~/proj", root, File("../home/proj/Dockerfile")),
            (
                "./empty",
                root,
                Err(&["{root}/empty is a directory with no Dockerfile or Containerfile in it"]),
            ),
            // Images that are not.
            (
                "Foo",
                root,
                Err(&["invalid image reference \"Foo\"", "uppercase"]),
            ),
            (
                "ci/",
                root,
                Err(&["did you mean a path? Write it as ./ci/"]),
            ),
            (
                "Dockerfile.",
                root,
                Err(&["did you mean a path? Write it as ./Dockerfile."]),
            ),
        ];
        for (input, dir, want) in cases {
            check(&fx, input, dir, want);
        }
    }

    #[test]
    fn absolute_paths_ignore_base_dir() {
        let fx = fixture();
        let abs = fx.root.join("existing-file-with-any-name");
        let got = parse_impl(abs.to_str().unwrap(), Some(Path::new("/nonexistent")), None).unwrap();
        assert_eq!(got.as_dockerfile().unwrap().path(), abs);
        let missing = fx.root.join("nope");
        let err = parse_impl(missing.to_str().unwrap(), None, None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{} does not exist", missing.display())),
            "{msg}"
        );
        assert!(!msg.contains("relative paths"), "{msg}");
    }

    #[test]
    fn tilde_without_home_is_an_error() {
        let err = parse_impl("~/x/Dockerfile", None, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidBase);
        assert!(err.to_string().contains("HOME is not set"), "{err}");
    }

    #[test]
    fn relative_base_dir_and_current_dir() {
        // Cargo runs unit tests in the crate directory, which has a Cargo.toml.
        let cwd = std::env::current_dir().unwrap();
        let got = Base::parse("./Cargo.toml").unwrap();
        assert_eq!(got.as_dockerfile().unwrap().path(), cwd.join("Cargo.toml"));
        let got = Base::parse_in("./Cargo.toml", Path::new(".")).unwrap();
        assert_eq!(got.as_dockerfile().unwrap().path(), cwd.join("Cargo.toml"));
        let err = Base::parse("./definitely-missing-file").unwrap_err();
        assert!(
            err.to_string().contains(&cwd.display().to_string()),
            "{err}"
        );
        let got: Base = "alpine:3".parse().unwrap();
        assert_eq!(got.to_string(), "docker.io/library/alpine:3");
    }

    #[test]
    fn dockerfile_names() {
        for yes in [
            "Dockerfile",
            "dockerfile",
            "DOCKERFILE",
            "Containerfile",
            "dev.Dockerfile",
            "dev.containerfile",
            "myDockerfile",
            "Dockerfile.dev",
            "containerfile.ci.arm64",
        ] {
            assert!(is_dockerfile_name(yes), "{yes}");
        }
        for no in [
            "Dockerfile.",
            "Dockerfiles",
            "Dockerfile-dev",
            "docker",
            "alpine",
            "",
            "file",
        ] {
            assert!(!is_dockerfile_name(no), "{no}");
        }
    }

    #[test]
    fn explicit_forms_never_guess() {
        assert_eq!(Base::default(), Base::Default);
        assert!(Base::default().is_default());
        let img = Base::image("alpine").unwrap();
        assert_eq!(
            img.as_image().unwrap().to_string(),
            "docker.io/library/alpine:latest"
        );
        let err = Base::image("./Dockerfile").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidBase);
        assert!(Base::image("").is_err());
        let d = Base::dockerfile("does/not/exist.txt");
        assert_eq!(d.path(), Path::new("does/not/exist.txt"));
        assert_eq!(d.context_dir(), Path::new("does/not"));
        let base: Base = d.into();
        assert_eq!(base.to_string(), "does/not/exist.txt");
        assert!(base.as_image().is_none());
        let r = ImageRef::parse("ghcr.io/o/i:1").unwrap();
        let base: Base = r.clone().into();
        assert_eq!(base, Base::Image(r));
        assert_eq!(base.to_string(), "ghcr.io/o/i:1");
        assert_eq!(Base::Default.to_string(), "default");
    }

    #[test]
    fn dockerfile_builder() {
        let d = Base::dockerfile("Dockerfile");
        assert_eq!(d.context_dir(), Path::new("."));
        assert!(d.build_args().is_empty());
        assert_eq!(
            (d.target_stage(), d.platform_name(), d.is_no_cache()),
            (None, None, false)
        );

        let d = Base::dockerfile("/a/b/Dockerfile")
            .context("/ctx")
            .build_arg("B", "2")
            .build_arg("A", "1")
            .build_arg("B", "3")
            .target("dev")
            .platform("linux/amd64")
            .no_cache(true);
        assert_eq!(d.path(), Path::new("/a/b/Dockerfile"));
        assert_eq!(d.context_dir(), Path::new("/ctx"));
        assert_eq!(d.explicit_context(), Some(Path::new("/ctx")));
        let args: Vec<_> = d
            .build_args()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(args, ["A=1", "B=3"]);
        assert_eq!(d.target_stage(), Some("dev"));
        assert_eq!(d.platform_name(), Some("linux/amd64"));
        assert!(d.is_no_cache());
        assert_eq!(
            Base::dockerfile("/x/Dockerfile").context_dir(),
            Path::new("/x")
        );
        assert_eq!(
            Base::dockerfile("/Dockerfile").context_dir(),
            Path::new("/")
        );
    }

    #[test]
    fn resolve_paths() {
        let home = Path::new("/home/u");
        let d = Base::dockerfile("ci/../ci/./Dockerfile")
            .context("..")
            .resolve_paths_with(Path::new("/w/p"), Some(home));
        assert_eq!(d.path(), Path::new("/w/p/ci/Dockerfile"));
        assert_eq!(d.context_dir(), Path::new("/w"));

        let d = Base::dockerfile("~/x/Dockerfile").resolve_paths_with(Path::new("/w"), Some(home));
        assert_eq!(d.path(), Path::new("/home/u/x/Dockerfile"));
        assert_eq!(d.context_dir(), Path::new("/home/u/x"));
        assert_eq!(d.explicit_context(), None);

        let d = Base::dockerfile("/abs/Dockerfile")
            .context("~")
            .resolve_paths_with(Path::new("/w"), Some(home));
        assert_eq!(d.path(), Path::new("/abs/Dockerfile"));
        assert_eq!(d.context_dir(), home);

        let d = Base::dockerfile("~/Dockerfile").resolve_paths_with(Path::new("/w"), None);
        assert_eq!(d.path(), Path::new("/w/~/Dockerfile"));

        let cwd = std::env::current_dir().unwrap();
        let d = Base::dockerfile("Dockerfile").resolve_paths(Path::new("sub"));
        assert_eq!(d.path(), cwd.join("sub/Dockerfile"));
    }

    #[test]
    fn lexical_normalisation() {
        for (input, want) in [
            ("/a/./b/../c", "/a/c"),
            ("/../a", "/a"),
            ("/a/b/../../..", "/"),
            ("a/../..", ".."),
            ("../a/./b", "../a/b"),
            ("./", "."),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(normalize_path(Path::new(input)), Path::new(want), "{input}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let fx = fixture();
            if let Err(e) = parse_impl(&s, Some(&fx.root), Some(&fx.home)) {
                prop_assert!(matches!(e.kind(), ErrorKind::InvalidBase), "{e}");
            }
        }

        #[test]
        fn parse_never_panics_on_path_like_strings(
            s in "(\\./|\\.\\./|/|~/)?[a-zA-Z. /_~-]{0,20}(Dockerfile|Containerfile|\\.dev)?"
        ) {
            let fx = fixture();
            if let Err(e) = parse_impl(&s, Some(&fx.root), Some(&fx.home)) {
                prop_assert!(matches!(e.kind(), ErrorKind::InvalidBase), "{e}");
            }
        }
    }
}
