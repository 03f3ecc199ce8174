//! A command's environment and program path, as runc builds them for `docker exec`: the
//! container's environment, overridden and extended by the request's, then `PATH`, `HOME` (the
//! user's) and, on a terminal, `TERM` when still unset.

/// PATH when neither the container nor the request sets one (runc's default).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub type Var = (Vec<u8>, Vec<u8>);

/// Splits `KEY=value` entries (the agent's own environment at start = the container's).
pub fn parse_environ(entries: impl IntoIterator<Item = Vec<u8>>) -> Vec<Var> {
    entries
        .into_iter()
        .filter_map(|e| {
            let eq = e.iter().position(|b| *b == b'=')?;
            if eq == 0 {
                return None;
            }
            Some((e[..eq].to_vec(), e[eq + 1..].to_vec()))
        })
        .collect()
}

/// The environment of a command: `base` with `request` applied on top, then the defaults.
pub fn build(base: &[Var], request: &[Var], home: &str, tty: bool) -> Vec<Var> {
    let mut env: Vec<Var> = base.to_vec();
    for (k, v) in request {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let mut default = |k: &[u8], v: &[u8]| {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.to_vec(), v.to_vec()));
        }
    };
    default(b"PATH", DEFAULT_PATH);
    default(b"HOME", home.as_bytes());
    if tty {
        default(b"TERM", b"xterm");
    }
    env
}

/// Drops `HOME` from the agent's own environment when it is the one the runtime derives for
/// the agent's user (`own_home`): then it was not the image's, and each command gets its own
/// user's. (An image that sets exactly that HOME is treated the same; a request can set HOME.)
pub fn drop_runtime_home(env: &mut Vec<Var>, own_home: &str) {
    env.retain(|(k, v)| !(k == b"HOME" && v == own_home.as_bytes()));
}

/// The value of `key` in `env`.
pub fn get<'a>(env: &'a [Var], key: &[u8]) -> Option<&'a [u8]> {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// Where to look for `program`: itself when it names a path, else each `PATH` entry in order
/// (an empty entry is the working directory, as in execvp).
pub fn candidates(program: &[u8], path: &[u8]) -> Vec<Vec<u8>> {
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut p = dir.to_vec();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(program);
            p
        })
        .collect()
}

/// Checks names and arguments: no NUL anywhere, no `=` or empty environment names.
pub fn validate(argv: &[Vec<u8>], env: &[Var]) -> Result<(), String> {
    match argv.first() {
        None => return Err("cannot run an empty command: give at least the program name".into()),
        Some(p) if p.is_empty() => return Err("the program name is empty".into()),
        _ => {}
    }
    if argv.iter().any(|a| a.contains(&0)) {
        return Err("command arguments cannot contain NUL bytes".into());
    }
    for (k, v) in env {
        if k.is_empty() || k.contains(&b'=') || k.contains(&0) {
            return Err(format!(
                "invalid environment variable name {:?}",
                String::from_utf8_lossy(k)
            ));
        }
        if v.contains(&0) {
            return Err(format!(
                "the value of environment variable {} contains a NUL byte",
                String::from_utf8_lossy(k)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<Var> {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn builds_like_docker_exec() {
        let base = vars(&[("PATH", "/bin"), ("HOSTNAME", "abc"), ("A", "1")]);
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                &[],
                false,
                &[
                    ("PATH", "/bin"),
                    ("HOSTNAME", "abc"),
                    ("A", "1"),
                    ("HOME", "/h"),
                ],
            ),
            (
                &[("A", "2"), ("B", "x=y")],
                true,
                &[
                    ("PATH", "/bin"),
                    ("HOSTNAME", "abc"),
                    ("A", "2"),
                    ("B", "x=y"),
                    ("HOME", "/h"),
                    ("TERM", "xterm"),
                ],
            ),
            (
                &[("HOME", "/elsewhere"), ("TERM", "dumb")],
                true,
                &[
                    ("PATH", "/bin"),
                    ("HOSTNAME", "abc"),
                    ("A", "1"),
                    ("HOME", "/elsewhere"),
                    ("TERM", "dumb"),
                ],
            ),
        ];
        for (req, tty, want) in cases {
            assert_eq!(build(&base, &vars(req), "/h", *tty), vars(want), "{req:?}");
        }
        let bare = build(&[], &[], "/", false);
        assert_eq!(get(&bare, b"PATH"), Some(DEFAULT_PATH));
        assert_eq!(get(&bare, b"HOME"), Some(&b"/"[..]));
    }

    #[test]
    fn drops_only_the_runtime_home() {
        let mut e = vars(&[("HOME", "/root"), ("A", "1")]);
        drop_runtime_home(&mut e, "/root");
        assert_eq!(e, vars(&[("A", "1")]));
        let mut e = vars(&[("HOME", "/work"), ("A", "1")]);
        drop_runtime_home(&mut e, "/root");
        assert_eq!(e, vars(&[("HOME", "/work"), ("A", "1")]));
    }

    #[test]
    fn parses_environ() {
        let e = parse_environ([
            b"A=1".to_vec(),
            b"B==2".to_vec(),
            b"=bad".to_vec(),
            b"noeq".to_vec(),
        ]);
        assert_eq!(e, vars(&[("A", "1"), ("B", "=2")]));
    }

    #[test]
    fn path_candidates() {
        assert_eq!(candidates(b"/bin/ls", b"/x"), vec![b"/bin/ls".to_vec()]);
        assert_eq!(candidates(b"./run", b"/x"), vec![b"./run".to_vec()]);
        assert_eq!(
            candidates(b"ls", b"/usr/bin:/bin/::/opt"),
            vec![
                b"/usr/bin/ls".to_vec(),
                b"/bin/ls".to_vec(),
                b"./ls".to_vec(),
                b"/opt/ls".to_vec()
            ]
        );
    }

    #[test]
    fn validation() {
        assert!(validate(&[], &[]).is_err());
        assert!(validate(&[vec![]], &[]).is_err());
        assert!(validate(&[b"a\0".to_vec()], &[]).is_err());
        assert!(validate(&[b"a".to_vec()], &vars(&[("A=B", "c")])).is_err());
        assert!(validate(&[b"a".to_vec()], &vars(&[("", "c")])).is_err());
        assert!(validate(&[b"a".to_vec()], &vars(&[("A", "b=c")])).is_ok());
    }
}
