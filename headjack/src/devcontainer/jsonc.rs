//! JSONC text (JSON with comments and trailing commas) → a small owned tree in which every
//! value knows its line and column, so later checks can point at the offending spot.
//!
//! Parsing is done by `jsonc-parser` (the crate the dev container ecosystem's Rust tools use),
//! restricted to what VS Code's JSONC accepts: comments and trailing commas yes; JSON5 extras
//! (single quotes, hex numbers, unquoted keys, missing commas) no, so a typo is an error at
//! its position instead of a silently different value.

use std::fmt;
use std::path::Path;

use jsonc_parser::ast::{self, ObjectPropName};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use crate::error::{Error, ErrorKind, Result};

/// A 1-based line and column (in characters) in a definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A JSON value with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Json,
}

/// A JSON value; numbers keep their source text so integers stay exact.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in source order; a repeated key appears once, with its last value.
    Object(Vec<Member>),
}

/// One `"key": value` of an object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
}

impl Json {
    /// What kind of value this is, for error messages ("expected a string, found an array").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// The error for something wrong at `pos` in `file`: `file:line:col: what`.
pub(crate) fn error_at(file: &Path, pos: Pos, what: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidBase,
        format!("{}:{pos}: {what}", file.display()),
    )
}

/// Parses `text` (the contents of `file`, named in errors) into a tree.
///
/// # Errors
///
/// [`ErrorKind::InvalidBase`] with the file, line and column for invalid JSONC, an empty file
/// or more than one top-level value. `duplicates` receives a note for each repeated key (JSON
/// keeps the last value, as VS Code and the devcontainers CLI do).
pub(crate) fn parse(text: &str, file: &Path, duplicates: &mut Vec<String>) -> Result<Node> {
    // Editors on Windows may save a byte order mark; VS Code reads past it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let lines = LineIndex::new(text);
    let parsed =
        jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options).map_err(|e| {
            let pos = lines.pos(e.range().start);
            error_at(
                file,
                pos,
                format!("invalid JSONC: {} (comments and trailing commas are allowed; other JSON5 extensions are not)", e.kind()),
            )
        })?;
    let Some(value) = parsed.value else {
        return Err(error_at(
            file,
            Pos { line: 1, column: 1 },
            "the file is empty: a dev container definition is a JSON object",
        ));
    };
    let mut convert = Convert {
        lines: &lines,
        file,
        duplicates,
    };
    Ok(convert.value(value))
}

struct Convert<'a> {
    lines: &'a LineIndex<'a>,
    file: &'a Path,
    duplicates: &'a mut Vec<String>,
}

impl Convert<'_> {
    fn value(&mut self, value: ast::Value<'_>) -> Node {
        let pos = self.lines.pos(value.range().start);
        let value = match value {
            ast::Value::NullKeyword(_) => Json::Null,
            ast::Value::BooleanLit(b) => Json::Bool(b.value),
            ast::Value::NumberLit(n) => Json::Number(n.value.to_string()),
            ast::Value::StringLit(s) => Json::String(s.value.into_owned()),
            ast::Value::Array(a) => {
                Json::Array(a.elements.into_iter().map(|e| self.value(e)).collect())
            }
            ast::Value::Object(o) => {
                let mut members: Vec<Member> = Vec::with_capacity(o.properties.len());
                for prop in o.properties {
                    let key_pos = self.lines.pos(prop.name.range().start);
                    let key = match prop.name {
                        ObjectPropName::String(s) => s.value.into_owned(),
                        ObjectPropName::Word(w) => w.value.to_string(),
                    };
                    let node = self.value(prop.value);
                    if let Some(i) = members.iter().position(|m| m.key == key) {
                        let first = members.remove(i);
                        self.duplicates.push(format!(
                            "{}:{key_pos}: key {key:?} repeats the one at line {}; the last one counts",
                            self.file.display(),
                            first.key_pos.line
                        ));
                    }
                    members.push(Member { key, key_pos, node });
                }
                Json::Object(members)
            }
        };
        Node { pos, value }
    }
}

/// Byte offset → line and column.
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        // The offset may fall inside a multi-byte character when given by an error range.
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.text[start..end].chars().count() + 1;
        Pos { line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_ok(text: &str) -> (Node, Vec<String>) {
        let mut dups = Vec::new();
        let node = parse(text, Path::new("/d/devcontainer.json"), &mut dups).unwrap();
        (node, dups)
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("/d/devcontainer.json"), &mut Vec::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn comments_and_trailing_commas() {
        let (node, dups) = parse_ok(
            "// top\n{\n  /* block */ \"a\": [1, 2,],\n  \"b\": {\"c\": null,}, // end\n}\n",
        );
        assert!(dups.is_empty());
        let Json::Object(members) = node.value else {
            panic!("not an object")
        };
        assert_eq!(members[0].key, "a");
        assert_eq!(
            members[0].key_pos,
            Pos {
                line: 3,
                column: 15
            }
        );
        assert_eq!(
            members[0].node.value,
            Json::Array(vec![
                Node {
                    pos: Pos {
                        line: 3,
                        column: 21
                    },
                    value: Json::Number("1".into())
                },
                Node {
                    pos: Pos {
                        line: 3,
                        column: 24
                    },
                    value: Json::Number("2".into())
                },
            ])
        );
        assert_eq!(members[1].node.pos, Pos { line: 4, column: 8 });
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let cases = [
            (
                "{\n  \"a\": 1\n  \"b\": 2\n}",
                "/d/devcontainer.json:2:9: invalid JSONC: Expected comma",
            ),
            (
                "{\"a\": 'x'}",
                "/d/devcontainer.json:1:7: invalid JSONC: Single-quoted",
            ),
            (
                "{a: 1}",
                "/d/devcontainer.json:1:2: invalid JSONC: Expected string",
            ),
            (
                "{\"a\": 0x10}",
                "/d/devcontainer.json:1:7: invalid JSONC: Hexadecimal",
            ),
            ("{\"a\": [1, 2}", "/d/devcontainer.json:1:"),
            ("{\"a\": 1} {}", "more than one JSON value"),
            ("{ /* open", "Unterminated comment block"),
            (
                "  \n // only a comment\n",
                "/d/devcontainer.json:1:1: the file is empty",
            ),
            (
                "{\"é\": \"ü\",\n \"x\": ]}",
                "/d/devcontainer.json:2:7: invalid JSONC",
            ),
        ];
        for (text, want) in cases {
            let got = parse_err(text);
            assert!(got.contains(want), "{text:?}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn repeated_keys_keep_the_last_and_are_reported() {
        let (node, dups) = parse_ok("{\"a\": 1,\n \"b\": 2,\n \"a\": 3}");
        let Json::Object(members) = node.value else {
            panic!()
        };
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].key, "a");
        assert_eq!(members[1].node.value, Json::Number("3".into()));
        assert_eq!(dups.len(), 1);
        assert!(
            dups[0].contains(":3:2: key \"a\" repeats the one at line 1"),
            "{dups:?}"
        );
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let (node, _) = parse_ok("\u{feff}{\r\n  \"a\": 1,\r\n}\r\n");
        let Json::Object(m) = node.value else {
            panic!()
        };
        assert_eq!(m[0].key_pos, Pos { line: 2, column: 3 });
        let e = parse_err("\u{feff}{\"a\" 1}");
        assert!(
            e.contains("devcontainer.json:1:6: invalid JSONC: Expected colon"),
            "{e}"
        );
    }

    #[test]
    fn string_escapes_are_decoded() {
        let (node, _) = parse_ok(r#"{"a": "x\"y\\z\u0041\n"}"#);
        let Json::Object(m) = node.value else {
            panic!()
        };
        assert_eq!(m[0].node.value, Json::String("x\"y\\zA\n".into()));
    }

    proptest! {
        // A fuzz of the parser boundary: any text gives a tree or an error, never a panic.
        #[test]
        fn never_panics(text in "(\\PC|[{}\\[\\]\",:/*\n ]){0,80}") {
            let _ = parse(&text, Path::new("f.json"), &mut Vec::new());
        }

        #[test]
        fn never_panics_on_json_like_text(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", "\"k\"", "\"v\"", "1", "-2.5e3", "null",
                    "true", "// c\n", "/* c */", "\n", "\"\\u00e9\"", "é", "\"\\x\"",
                ]),
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let _ = parse(&text, Path::new("f.json"), &mut Vec::new());
        }
    }
}
