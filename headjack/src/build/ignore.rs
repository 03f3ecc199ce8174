//! `.dockerignore` / `.containerignore` rules with Docker's exact semantics.
//!
//! This is a port of what the docker CLI does, not of gitignore:
//! - reading (`moby/patternmatcher/ignorefile.ReadAll`): a UTF-8 BOM is dropped, a line that
//!   *starts* with `#` is a comment (an indented `#` is a pattern), lines are trimmed, empty lines
//!   skipped, a leading `!` marks an exception, the rest is `filepath.Clean`ed and a leading `/`
//!   removed (patterns are relative to the context root);
//! - compiling (`patternmatcher.New` + `Pattern.compile`): each pattern is checked with Go's
//!   `filepath.Match` syntax, then turned into an exact, prefix, suffix or regex matcher exactly
//!   as moby does (`*` and `?` never cross `/`, `**` spans any number of directories, `[…]`
//!   classes with `^` negation, `\` escapes);
//! - matching (`MatchesOrParentMatches`): a pattern applies to a path when it matches the path or
//!   one of its parent directories, and the last applicable pattern wins.
//!
//! The context walk uses [`IgnoreRules::matches_with_parent`], the port of
//! `MatchesUsingParentResults` that the docker CLI's tar walk uses, so that the set of files we
//! send is the one `docker build` would send, quirks included.

use regex::Regex;

use crate::error::{Error, Result};

/// The parsed rules of one ignore file, in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct IgnoreRules {
    patterns: Vec<Pattern>,
    /// Whether any pattern is a `!` exception (moby `PatternMatcher.Exclusions`).
    exceptions: bool,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!` (moby `Pattern.String`).
    text: String,
    /// `true` for a `!` line: a match re-includes the path.
    exception: bool,
    matcher: Matcher,
}

/// How a pattern is matched; moby picks the cheapest form that is equivalent to its regex.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `foo**`: the path must start with the text before `**`.
    Prefix(String),
    /// `**foo` or `**/foo`: the path must end with what follows `**`.
    Suffix(String),
    /// Anything else: moby's glob-to-regex translation.
    Regex(Regex),
}

/// Per-pattern results for a directory, handed to its children during a walk
/// (moby `patternmatcher.MatchInfo`).
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchInfo {
    /// `parent_matched[i]`: pattern `i` matched the directory (or one of its parents).
    /// Empty means "no information" (the path is at the top of the walk).
    parent_matched: Vec<bool>,
}

impl IgnoreRules {
    /// Parses the text of an ignore file.
    ///
    /// A malformed pattern (an unclosed `[`, a trailing `\`, a bare `!`, …) is an error of kind
    /// `InvalidArgument` naming the line, where Docker would fail the build.
    pub(crate) fn parse(text: &str) -> Result<IgnoreRules> {
        let mut rules = IgnoreRules::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            // ReadAll checks for comments before trimming, so "  # x" is a pattern.
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let pattern = read_all_normalize(line);
            rules.push(&pattern).map_err(|why| {
                Error::invalid_argument(format!(
                    "ignore file line {line_no}: invalid pattern {line:?}: {why}"
                ))
            })?;
        }
        Ok(rules)
    }

    /// Compiles one pattern as `patternmatcher.New` does and appends it.
    fn push(&mut self, pattern: &str) -> std::result::Result<(), String> {
        // New trims and cleans again (a no-op after ReadAll except for "!/" → "!").
        let p = pattern.trim();
        if p.is_empty() {
            return Ok(());
        }
        let p = go_clean(p);
        let (exception, body) = match p.strip_prefix('!') {
            Some("") => return Err("illegal exclusion pattern \"!\"".into()),
            Some(rest) => (true, rest.to_string()),
            None => (false, p),
        };
        validate_go_glob(&body)?;
        let matcher = compile(&body)?;
        self.exceptions |= exception;
        self.patterns.push(Pattern {
            text: body,
            exception,
            matcher,
        });
        Ok(())
    }

    /// Whether there are no patterns at all (nothing is ever excluded).
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exception.
    #[cfg(test)]
    pub(crate) fn has_exceptions(&self) -> bool {
        self.exceptions
    }

    /// Whether `rel_path` is excluded (moby `MatchesOrParentMatches`).
    ///
    /// `rel_path` uses `/` separators, is relative to the context root and has no leading `./`.
    /// Also how BuildKit's include patterns select the paths of a build context.
    pub(crate) fn is_excluded(&self, rel_path: &str) -> bool {
        let parent = go_dir(rel_path);
        let mut matched = false;
        for pattern in &self.patterns {
            // An exception only matters once something matched, an exclusion only until then.
            if pattern.exception != matched {
                continue;
            }
            let hit = pattern.matches(rel_path)
                || (parent != "." && parent_prefixes(parent).any(|dir| pattern.matches(dir)));
            if hit {
                matched = !pattern.exception;
            }
        }
        matched
    }

    /// Whether `rel_path` is excluded, reusing the results of its parent directory
    /// (moby `MatchesUsingParentResults`, which is what the docker CLI's context walk calls).
    ///
    /// `parent` is the [`MatchInfo`] returned for the parent directory, or `None` at the top of
    /// the walk. The returned info is to be handed to the children when `rel_path` is a directory.
    /// The result can differ from [`is_excluded`](Self::is_excluded) in rare orderings of `!`
    /// lines; Docker behaves the same way.
    pub(crate) fn matches_with_parent(
        &self,
        rel_path: &str,
        parent: Option<&MatchInfo>,
    ) -> (bool, MatchInfo) {
        let parent_matched = parent.map(|p| p.parent_matched.as_slice()).unwrap_or(&[]);
        let parent_matched = if parent_matched.len() == self.patterns.len() {
            parent_matched
        } else {
            &[]
        };
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent_matched.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exception != matched {
                    continue;
                }
                hit = pattern.matches(rel_path);
                if !hit && parent_matched.is_empty() {
                    let parent = go_dir(rel_path);
                    hit = parent != "." && parent_prefixes(parent).any(|dir| pattern.matches(dir));
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exception;
            }
        }
        (matched, info)
    }

    /// Whether an excluded directory must still be walked because an exception pattern names
    /// something below it.
    ///
    /// This is Docker's textual check (`strings.HasPrefix(pattern+"/", dir+"/")`): `!dir/keep`
    /// rescues `dir/keep`, but `!**/keep` or `!*/keep` does not look inside an excluded `dir`.
    pub(crate) fn exception_may_match_under(&self, dir_rel: &str) -> bool {
        self.exceptions
            && self.patterns.iter().filter(|p| p.exception).any(|p| {
                let pat = format!("{}/", p.text);
                pat.starts_with(dir_rel) && pat.as_bytes().get(dir_rel.len()) == Some(&b'/')
            })
    }
}

impl Pattern {
    /// Whether this pattern matches `path` itself (moby `Pattern.match`).
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    // "**/foo" also matches "foo" at the root.
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// The per-line normalisation of `ignorefile.ReadAll`: clean, make relative, keep the `!`.
fn read_all_normalize(line: &str) -> String {
    let (invert, rest) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut pattern = String::new();
    if !rest.is_empty() {
        let cleaned = go_clean(rest);
        pattern = match cleaned.strip_prefix('/') {
            Some(relative) if !relative.is_empty() => relative.to_string(),
            _ => cleaned,
        };
    }
    if invert {
        format!("!{pattern}")
    } else {
        pattern
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Go's `filepath.Dir` for a clean relative path: everything before the last `/`, or `.`.
fn go_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`: the directories moby tries against each pattern.
fn parent_prefixes(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(|(i, _)| &dir[..i])
        .chain(std::iter::once(dir))
}

/// The syntax check of Go's `filepath.Match` (which moby runs on every pattern).
fn validate_go_glob(pattern: &str) -> std::result::Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("trailing backslash".into());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    class_char(&chars, &mut i)?;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// One (possibly escaped) character of a `[…]` class (Go `getEsc`).
fn class_char(chars: &[char], i: &mut usize) -> std::result::Result<(), String> {
    match chars.get(*i) {
        None => return Err("unclosed character class '['".into()),
        Some('-') | Some(']') => {
            return Err("character class has a '-' or ']' where a character is expected".into());
        }
        Some('\\') => {
            *i += 1;
            if *i >= chars.len() {
                return Err("unclosed character class '['".into());
            }
        }
        Some(_) => {}
    }
    *i += 1;
    if *i >= chars.len() {
        return Err("unclosed character class '['".into());
    }
    Ok(())
}

/// moby's `Pattern.compile`: picks the matcher kind and builds the regex text (Go syntax).
fn compile(pattern: &str) -> std::result::Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // "**/" is treated as "**".
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    re.push('\\');
                    re.push(next);
                    i += 1;
                    kind = Kind::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regex;
            }
            _ => re.push(ch),
        }
        step += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        // Prefix patterns end in "**" and suffix patterns start with it (Clean drops a final '/').
        Kind::Prefix => Matcher::Prefix(pattern.get(..pattern.len() - 2).unwrap_or("").into()),
        Kind::Suffix => Matcher::Suffix(pattern.get(2..).unwrap_or("").into()),
        Kind::Regex => {
            re.push('$');
            let rust = go_regex_to_rust(&re);
            Matcher::Regex(Regex::new(&rust).map_err(|e| format!("not a valid pattern: {e}"))?)
        }
    })
}

/// Rewrites the Go (RE2) regex moby builds so that the `regex` crate reads it the same way.
///
/// The two dialects differ only inside `[…]`: Rust reads `[` as a nested class and `&&`, `~~`,
/// `--` as set operations, Go reads them as plain characters (POSIX `[:name:]` is the same in
/// both; Go's glob check already rejects `--`). Escapes are copied unchanged; both dialects
/// reject the same unknown ones.
fn go_regex_to_rust(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == '\\' {
            out.push('\\');
            if let Some(&next) = chars.get(i) {
                out.push(next);
                i += 1;
            }
            continue;
        }
        if !in_class {
            // A lone ']' is a literal in Go; escape it so that no dialect question arises.
            if c == ']' {
                out.push_str("\\]");
                continue;
            }
            out.push(c);
            if c == '[' {
                in_class = true;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A ']' right after '[' or '[^' is a literal in Go.
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            continue;
        }
        match c {
            ']' => {
                in_class = false;
                out.push(']');
            }
            '[' if chars.get(i) == Some(&':') => {
                // A POSIX class "[:alpha:]" inside a class: copy it through.
                let rest: String = chars[i..].iter().collect();
                match rest.find(":]") {
                    Some(end) if end > 0 => {
                        out.push('[');
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                    }
                    _ => out.push_str("\\["),
                }
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// Asserts `is_excluded` for each `(path, excluded)` pair.
    fn check(text: &str, cases: &[(&str, bool)]) {
        let r = rules(text);
        for (path, want) in cases {
            assert_eq!(r.is_excluded(path), *want, "rules {text:?}, path {path:?}");
        }
    }

    #[test]
    fn read_all_normalisation() {
        // The moby ignorefile_test.go table, plus the lines that New rejects.
        let r = rules(
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n",
        );
        let texts: Vec<_> = r
            .patterns
            .iter()
            .map(|p| (p.exception, p.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (false, "test1"),
                (false, "test2"),
                (false, "a/file/here"),
                (false, "lastfile"),
                (true, "inverted/abs/path"),
            ]
        );
        assert!(r.has_exceptions());
        assert!(IgnoreRules::parse("a\n!\n").is_err());
        assert!(IgnoreRules::parse("! ").is_err());
        assert!(IgnoreRules::parse("!/").is_err());
        // BOM, CRLF, "./" and ".." are cleaned; an indented '#' is a pattern.
        let r = rules("\u{feff}./a//b/../c/\r\n  #x\r\n");
        let texts: Vec<_> = r.patterns.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["a/c", "#x"]);
        assert!(rules("#x").is_empty());
    }

    #[test]
    fn malformed_patterns_name_the_line() {
        for bad in ["[", "a[", "[]", "[a-]", "[-a]", "a\\", "[^]", "[a", "*[z"] {
            let err = IgnoreRules::parse(&format!("ok\n{bad}\n")).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{bad}"
            );
            assert!(err.message().contains("line 2"), "{bad}: {err}");
        }
        // Valid classes.
        for good in [
            "[a]",
            "[a-z]",
            "[^a-z]",
            "[!a]",
            "[\\]]",
            "[*]",
            "[[:alpha:]]",
            "a]",
        ] {
            rules(good);
        }
    }

    #[test]
    fn containerignore_man_page_examples() {
        // containers-common .containerignore(5) / Docker docs examples.
        check(
            "*/temp*",
            &[
                ("somedir/temporary.txt", true),
                ("somedir/temp", true),
                ("somedir/temp/x", true),
                ("temp", false),
                ("temp.txt", false),
                ("a/b/temp", false),
            ],
        );
        check(
            "*/*/temp*",
            &[
                ("somedir/subdir/temporary.txt", true),
                ("a/temp", false),
                ("a/b/c/temp", false),
            ],
        );
        check(
            "temp?",
            &[
                ("tempa", true),
                ("tempb", true),
                ("temp", false),
                ("temp/", false),
                ("a/tempa", false),
            ],
        );
        check("temp?", &[("tempab", false), ("tempa/x", true)]);
    }

    #[test]
    fn double_star() {
        check(
            "**/*.go",
            &[
                ("main.go", true),
                ("a/main.go", true),
                ("a/b/c.go", true),
                ("a.go.txt", false),
            ],
        );
        // "**" at the start, middle and end.
        check("**", &[("a", true), ("a/b", true), (".git", true)]);
        check(
            "a/**/b",
            &[
                ("a/b", true),
                ("a/x/b", true),
                ("a/x/y/b", true),
                ("a/x/y/b/c", true),
                ("b", false),
                ("x/a/b", false),
            ],
        );
        check(
            "a/**",
            &[("a/b", true), ("a/b/c", true), ("a", false), ("ab", false)],
        );
        check(
            "a**",
            &[("a", true), ("ab", true), ("a/b", true), ("b", false)],
        );
        check(
            "**/b",
            &[("b", true), ("a/b", true), ("a/b/c", true), ("ab", false)],
        );
        // moby's suffix shortcut: "**b" is a plain suffix test, so it also matches "ab".
        check(
            "**b",
            &[("b", true), ("ab", true), ("a/xb", true), ("bc", false)],
        );
        check("**/a/**", &[("a/b", true), ("x/a/b", true), ("a", false)]);
    }

    #[test]
    fn markdown_with_readme_exception_in_both_orders() {
        check(
            "*.md\n!README*.md",
            &[
                ("a.md", true),
                ("README.md", false),
                ("README-dev.md", false),
                ("docs/a.md", false),
            ],
        );
        // Reversed, the exclusion comes last and wins.
        check("!README*.md\n*.md", &[("a.md", true), ("README.md", true)]);
        check(
            "*.md\n!README*.md\nREADME-secret.md",
            &[("README.md", false), ("README-secret.md", true)],
        );
    }

    #[test]
    fn exception_then_exclude_and_last_match_wins() {
        check("!a\na", &[("a", true), ("a/b", true)]);
        check("a\n!a", &[("a", false), ("a/b", false)]);
        check(
            "a\n!a/b",
            &[("a", true), ("a/b", false), ("a/b/c", false), ("a/c", true)],
        );
        check(
            "*\n!keep\n",
            &[
                ("x", true),
                ("keep", false),
                ("keep/y", false),
                ("dir/keep", true),
            ],
        );
    }

    #[test]
    fn directories_and_leading_slash() {
        check(
            "dir/",
            &[
                ("dir", true),
                ("dir/x", true),
                ("dir/x/y", true),
                ("dirx", false),
                ("a/dir", false),
            ],
        );
        check("/dir", &[("dir", true), ("dir/x", true), ("a/dir", false)]);
        check("/a/b", &[("a/b", true), ("a/b/c", true), ("a", false)]);
        check(
            ".git",
            &[
                (".git", true),
                (".git/HEAD", true),
                ("sub/.git", false),
                (".gitignore", false),
            ],
        );
        check(
            "**/.git",
            &[
                (".git/HEAD", true),
                ("sub/.git/HEAD", true),
                (".gitignore", false),
            ],
        );
        check("*", &[("a", true), ("a/b", true)]);
    }

    #[test]
    fn character_classes_and_escapes() {
        check(
            "[a-c].txt",
            &[("a.txt", true), ("c.txt", true), ("d.txt", false)],
        );
        check("[^a-c].txt", &[("a.txt", false), ("d.txt", true)]);
        // Go has no "[!…]" negation: '!' is a member of the class.
        check(
            "[!a].txt",
            &[("!.txt", true), ("a.txt", true), ("b.txt", false)],
        );
        check("\\*.txt", &[("*.txt", true), ("a.txt", false)]);
        check("a\\?", &[("a?", true), ("ab", false)]);
        check("[\\]]x", &[("]x", true), ("x", false)]);
        // "." and "+" are literals, not regex operators.
        check("a.c+", &[("a.c+", true), ("abc+", false), ("a.cc", false)]);
        check("f?o.*", &[("foo.go", true), ("f/o.go", false)]);
        // Rust set operators are plain characters in Go.
        check("[a&&b]", &[("&", true), ("a", true), ("c", false)]);
        check("[[:digit:]]x", &[("1x", true), ("ax", false)]);
    }

    #[test]
    fn parent_results_walk_matches_docker() {
        // With parent results (what the docker CLI walk uses) an exception for a parent is not
        // re-checked against parents of later paths; is_excluded is the stateless variant.
        let r = rules("a/b\n!a");
        let (a, info) = r.matches_with_parent("a", None);
        assert!(!a);
        let (ab, _) = r.matches_with_parent("a/b", Some(&info));
        assert!(ab, "docker excludes a/b here");
        assert!(!r.is_excluded("a/b"));
        // The usual cases agree.
        let r = rules("*.md\n!README*.md\nnode_modules\n");
        for path in ["x.md", "README.md", "node_modules", "src/a.rs"] {
            assert_eq!(
                r.matches_with_parent(path, None).0,
                r.is_excluded(path),
                "{path}"
            );
        }
    }

    #[test]
    fn exception_prefix_check_is_textual() {
        let r = rules("dir\n!dir/keep\n");
        assert!(r.exception_may_match_under("dir"));
        assert!(!r.exception_may_match_under("di"));
        assert!(!r.exception_may_match_under("other"));
        let r = rules("dir\n!**/keep\n");
        assert!(!r.exception_may_match_under("dir"));
        assert!(!rules("dir").exception_may_match_under("dir"));
    }

    #[test]
    fn go_clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/../..", ".."),
            ("/..", "/"),
            ("/a/../../b", "/b"),
            ("../a/./b/..", "../a"),
            ("/", "/"),
        ] {
            assert_eq!(go_clean(input), want, "{input:?}");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9_-][a-z0-9._-]{0,6}".prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}(\n\\PC{0,40}){0,4}", path in "\\PC{0,30}") {
            if let Ok(r) = IgnoreRules::parse(&text) {
                let _ = r.is_excluded(&path);
                let _ = r.matches_with_parent(&path, None);
                let _ = r.exception_may_match_under(&path);
            }
        }

        #[test]
        fn never_panics_on_glob_syntax(text in "[\\[\\]\\\\*?!^a/-]{0,12}", path in "[\\[\\]*?a/-]{0,8}") {
            if let Ok(r) = IgnoreRules::parse(&text) {
                let _ = r.is_excluded(&path);
            }
        }

        #[test]
        fn double_star_excludes_everything(segs in prop::collection::vec(segment(), 1..5)) {
            prop_assert!(rules("**").is_excluded(&segs.join("/")));
        }

        #[test]
        fn literal_pattern_excludes_exactly_path_and_children(
            target in prop::collection::vec(segment(), 1..4),
            other in prop::collection::vec(segment(), 1..5),
        ) {
            let target = target.join("/");
            let other = other.join("/");
            let r = rules(&target);
            prop_assert!(r.is_excluded(&target));
            let child = format!("{}/child", target);
            prop_assert!(r.is_excluded(&child));
            let inside = other == target || other.starts_with(&format!("{target}/"));
            prop_assert_eq!(r.is_excluded(&other), inside);
            // The docker walk agrees on plain patterns.
            prop_assert_eq!(r.matches_with_parent(&other, None).0, inside);
        }
    }
}
