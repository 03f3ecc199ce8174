//! Users and groups, resolved from the container's own `/etc/passwd` and `/etc/group` (no NSS:
//! a static binary must not call getpwnam, and the image's files are the truth), with the same
//! rules as runc's `GetExecUser` so an exec runs as the same identity `docker exec` gives.

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Who a command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (set with setgroups; may be empty).
    pub groups: Vec<u32>,
    /// The home directory (`/` when the user has no passwd entry).
    pub home: String,
}

/// Why a user spec does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    UnknownUser(String),
    UnknownGroup(String),
}

pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Passwd {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn numeric(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves `user[:group]` (names or numbers; an empty user means uid `default_uid`).
///
/// As runc: a user name must exist; a numeric uid need not (then gid 0, home `/`). A group
/// given explicitly replaces the primary group and drops the supplementary ones; otherwise the
/// user's supplementary groups are every group listing the user's name. As Docker does since
/// 20.10.18 (GHSA-rc4r-wh2q-q6c4), the primary group leads the supplementary list, so a file
/// denying that group denies the command too. (Podman/crun leave it out.)
pub fn resolve(
    spec: &str,
    default_uid: u32,
    passwd: &[Passwd],
    groups: &[Group],
) -> Result<Identity, ResolveError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_num = if user.is_empty() {
        Some(default_uid)
    } else {
        numeric(user)
    };
    let entry = passwd.iter().find(|p| match user_num {
        Some(uid) => p.uid == uid,
        None => p.name == user,
    });
    let mut id = match (entry, user_num) {
        (Some(p), _) => Identity {
            uid: p.uid,
            gid: p.gid,
            groups: Vec::new(),
            home: if p.home.is_empty() {
                "/".into()
            } else {
                p.home.clone()
            },
        },
        (None, Some(uid)) => Identity {
            uid,
            gid: 0,
            groups: Vec::new(),
            home: "/".into(),
        },
        (None, None) => return Err(ResolveError::UnknownUser(user.to_string())),
    };
    match group.filter(|g| !g.is_empty()) {
        Some(g) => {
            let num = numeric(g);
            id.gid = match groups.iter().find(|e| match num {
                Some(gid) => e.gid == gid,
                None => e.name == g,
            }) {
                Some(e) => e.gid,
                None => num.ok_or_else(|| ResolveError::UnknownGroup(g.to_string()))?,
            };
        }
        None => {
            if let Some(p) = entry {
                id.groups = groups
                    .iter()
                    .filter(|g| g.members.contains(&p.name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    id.groups.retain(|g| *g != id.gid);
    id.groups.insert(0, id.gid);
    Ok(id)
}

/// Reads the container's files (missing files are empty: a scratch image has none).
pub fn load() -> (Vec<Passwd>, Vec<Group>) {
    let mut db = Db::default();
    db.refresh();
    (db.passwd, db.groups)
}

/// The container's users and groups, re-read only when the files change (every exec asks).
#[derive(Default)]
pub struct Db {
    pub passwd: Vec<Passwd>,
    pub groups: Vec<Group>,
    seen: [Option<FileId>; 2],
}

/// What identifies a version of a file: a rewrite (even by rename) changes one of these.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

fn file_id(path: &str) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileId {
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

impl Db {
    pub fn refresh(&mut self) {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let ids = [file_id("/etc/passwd"), file_id("/etc/group")];
        if ids[0].is_none() || ids[0] != self.seen[0] {
            self.passwd = parse_passwd(&read("/etc/passwd"));
        }
        if ids[1].is_none() || ids[1] != self.seen[1] {
            self.groups = parse_group(&read("/etc/group"));
        }
        self.seen = ids;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        dev:x:1000:1000:Dev:/home/dev:/bin/sh\n\
        nohome:x:1001:1001::\n\
        broken line\n\
        svc:x:999:50::/srv:/bin/false\n";
    const GROUP: &str = "root:x:0:\n\
        dev:x:1000:\n\
        docker:x:998:dev,svc\n\
        wheel:x:10:root, dev\n\
        staff:x:50:\n";

    fn id(uid: u32, gid: u32, groups: &[u32], home: &str) -> Identity {
        Identity {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn resolves_like_runc() {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        let cases: &[(&str, Result<Identity, ResolveError>)] = &[
            ("", Ok(id(0, 0, &[0, 10], "/root"))),
            ("root", Ok(id(0, 0, &[0, 10], "/root"))),
            ("dev", Ok(id(1000, 1000, &[1000, 998, 10], "/home/dev"))),
            ("1000", Ok(id(1000, 1000, &[1000, 998, 10], "/home/dev"))),
            ("1000:50", Ok(id(1000, 50, &[50], "/home/dev"))),
            ("dev:staff", Ok(id(1000, 50, &[50], "/home/dev"))),
            ("dev:4242", Ok(id(1000, 4242, &[4242], "/home/dev"))),
            ("4242", Ok(id(4242, 0, &[0], "/"))),
            ("4242:4242", Ok(id(4242, 4242, &[4242], "/"))),
            ("nohome", Ok(id(1001, 1001, &[1001], "/"))),
            ("svc", Ok(id(999, 50, &[50, 998], "/srv"))),
            ("dev:", Ok(id(1000, 1000, &[1000, 998, 10], "/home/dev"))),
            ("nobody2", Err(ResolveError::UnknownUser("nobody2".into()))),
            (
                "dev:nogroup",
                Err(ResolveError::UnknownGroup("nogroup".into())),
            ),
            ("-1", Err(ResolveError::UnknownUser("-1".into()))),
            (
                "99999999999",
                Err(ResolveError::UnknownUser("99999999999".into())),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(&resolve(spec, 0, &p, &g), want, "{spec:?}");
        }
    }

    #[test]
    fn an_image_without_passwd_still_runs_numeric_users() {
        assert_eq!(resolve("", 0, &[], &[]), Ok(id(0, 0, &[0], "/")));
        assert_eq!(resolve("", 1000, &[], &[]), Ok(id(1000, 0, &[0], "/")));
        assert_eq!(resolve("5:6", 0, &[], &[]), Ok(id(5, 6, &[6], "/")));
        assert!(resolve("root", 0, &[], &[]).is_err());
    }
}
