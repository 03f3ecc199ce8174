//! Finding and killing every descendant of a process through /proc. The shim of an exec is a
//! child subreaper, so every process the command starts — however it forks, `setsid`s or
//! `nohup`s — stays under it; killing its descendants until none is left is killing the
//! command's whole tree.

use std::collections::HashMap;

use super::sys::{self, Pid};

/// (pid, state, ppid) from the text of /proc/<pid>/stat. The command name is in parentheses and
/// may hold spaces and parentheses itself: the fields after it start after the last ')'.
pub fn parse_stat(text: &str) -> Option<(Pid, char, Pid)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, state, ppid))
}

/// Every live process's (pid, state, ppid).
fn table() -> Vec<(Pid, char, Pid)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name();
        let name = name.to_str()?;
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let text = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
        parse_stat(&text)
    })
    .collect()
}

/// The descendants of `root` in `table` (not `root` itself), zombies left out.
pub fn descendants_in(root: Pid, table: &[(Pid, char, Pid)]) -> Vec<Pid> {
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    let mut state: HashMap<Pid, char> = HashMap::new();
    for (pid, st, ppid) in table {
        children.entry(*ppid).or_default().push(*pid);
        state.insert(*pid, *st);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for c in children.get(&p).into_iter().flatten() {
            if *c == root || out.contains(c) {
                continue;
            }
            stack.push(*c);
            if !matches!(state.get(c), Some('Z') | Some('X')) {
                out.push(*c);
            }
        }
    }
    out
}

/// The live descendants of `root`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    descendants_in(root, &table())
}

/// Sends `sig` to every live descendant of `root` once.
pub fn signal_all(root: Pid, sig: i32) -> usize {
    let found = descendants(root);
    for p in &found {
        let _ = sys::kill(*p, sig);
    }
    found.len()
}

/// SIGKILLs the descendants of `root` (the caller, a subreaper) until none is left, reaping as
/// it goes; `on_reap` sees each reaped (pid, status). Scans repeat because a process may fork
/// between a scan and its kill; the kill stops it forking again, so this ends.
pub fn kill_all(root: Pid, mut on_reap: impl FnMut(Pid, i32)) {
    for round in 0u32.. {
        while let Some((pid, status)) = sys::try_wait(-1) {
            on_reap(pid, status);
        }
        let n = signal_all(root, libc::SIGKILL);
        if n == 0 {
            return;
        }
        if round == 10_000 {
            eprintln!("headjack-agent: processes keep appearing under {root} while being killed");
            return;
        }
        // Let the kills land (and the kernel reparent orphans to us) before scanning again.
        std::thread::sleep(std::time::Duration::from_micros(if round < 10 {
            200
        } else {
            2000
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        type Case<'a> = (&'a str, Option<(Pid, char, Pid)>);
        let cases: &[Case] = &[
            ("12 (sleep) S 1 12 12 0", Some((12, 'S', 1))),
            ("7 (a b) c)) Z 3 7 7", Some((7, 'Z', 3))),
            ("9 ()) R 0", Some((9, 'R', 0))),
            ("garbage", None),
            ("5 (x)", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat(text), *want, "{text}");
        }
    }

    #[test]
    fn finds_descendants_but_not_zombies_or_strangers() {
        let t = [
            (1, 'S', 0),
            (10, 'S', 1), // the root
            (11, 'S', 10),
            (12, 'Z', 10),
            (13, 'S', 11),
            (14, 'S', 12), // a child of a zombie is still a descendant
            (20, 'S', 1),
            (21, 'S', 20),
        ];
        let mut d = descendants_in(10, &t);
        d.sort_unstable();
        assert_eq!(d, vec![11, 13, 14]);
        assert!(descendants_in(21, &t).is_empty());
    }
}
