//! Showing pull and build progress: bars and spinners on a terminal (stderr), plain lines
//! otherwise, nothing with `--quiet`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headjack::Progress;
use headjack::progress::ProgressFn;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Global;

/// Receives progress events from the library and shows them.
#[derive(Clone)]
pub struct Reporter {
    inner: Option<Arc<Mutex<View>>>,
}

enum View {
    Bars(Bars),
    Lines(Lines),
}

impl Reporter {
    /// The reporter `global` asks for: silent with --quiet, bars when stderr is a terminal,
    /// else plain lines.
    pub fn new(global: &Global) -> Reporter {
        if global.quiet {
            return Reporter { inner: None };
        }
        let view = if std::io::stderr().is_terminal() {
            View::Bars(Bars::new())
        } else {
            View::Lines(Lines::default())
        };
        Reporter {
            inner: Some(Arc::new(Mutex::new(view))),
        }
    }

    /// The callback to hand to [`headjack::Spec::progress_fn`], if progress is shown at all.
    pub fn callback(&self) -> Option<ProgressFn> {
        let inner = self.inner.clone()?;
        Some(ProgressFn::new(move |event: &Progress| {
            let mut view = inner.lock().unwrap_or_else(|p| p.into_inner());
            match &mut *view {
                View::Bars(b) => b.show(event),
                View::Lines(l) => l.show(event),
            }
        }))
    }

    /// Clears bars and spinners (call when the pull or build is over).
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            let mut view = inner.lock().unwrap_or_else(|p| p.into_inner());
            if let View::Bars(b) = &mut *view {
                b.clear();
            }
        }
    }
}

/// Plain lines for logs and pipes: one line per change of a layer's status, every build line.
#[derive(Default)]
struct Lines {
    layer_status: HashMap<(String, String), String>,
    building: Option<String>,
}

impl Lines {
    fn show(&mut self, event: &Progress) {
        let mut err = std::io::stderr().lock();
        match event {
            Progress::Pull {
                image,
                layer,
                status,
                ..
            } => match layer {
                Some(layer) => {
                    let key = (image.clone(), layer.clone());
                    if self.layer_status.get(&key) != Some(status) {
                        let _ = writeln!(err, "pull {image}: {layer}: {status}");
                        self.layer_status.insert(key, status.clone());
                    }
                }
                None => {
                    let _ = writeln!(err, "pull {image}: {status}");
                }
            },
            Progress::Build { tag, line } => {
                if self.building.as_deref() != Some(tag.as_str()) {
                    let _ = writeln!(err, "build {tag}");
                    self.building = Some(tag.clone());
                }
                if !line.trim().is_empty() {
                    let _ = writeln!(err, "build: {line}");
                }
            }
            Progress::Hook { hook, entry, line } => match entry {
                Some(entry) => {
                    let _ = writeln!(err, "{hook} ({entry}): {line}");
                }
                None => {
                    let _ = writeln!(err, "{hook}: {line}");
                }
            },
            Progress::Warning { message, .. } => {
                let _ = writeln!(err, "warning: {message}");
            }
            other => {
                let _ = writeln!(err, "{other:?}");
            }
        }
    }
}

/// Bars on a terminal: one per pulled layer, a spinner for a build with its step lines above.
struct Bars {
    multi: MultiProgress,
    layers: HashMap<(String, String), ProgressBar>,
    build: Option<ProgressBar>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            layers: HashMap::new(),
            build: None,
        }
    }

    fn show(&mut self, event: &Progress) {
        match event {
            Progress::Pull {
                image,
                layer: Some(layer),
                status,
                current,
                total,
            } => {
                let key = (image.clone(), layer.clone());
                let short: String = layer.chars().take(12).collect();
                let bar = self.layers.entry(key).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} {spinner} {msg:24} {bytes:>10}/{total_bytes:10} {wide_bar}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_prefix(short);
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                if let Some(t) = total {
                    bar.set_length(*t);
                }
                if let Some(c) = current {
                    bar.set_position(*c);
                }
                bar.set_message(status.clone());
                if status == "Pull complete" || status == "Already exists" {
                    bar.finish_with_message(status.clone());
                }
            }
            Progress::Pull {
                image,
                layer: None,
                status,
                ..
            } => {
                let _ = self.multi.println(format!("pull {image}: {status}"));
            }
            Progress::Build { tag, line } => {
                let spinner = self.build.get_or_insert_with(|| {
                    let _ = self.multi.println(format!("build {tag}"));
                    let s = self.multi.add(ProgressBar::new_spinner());
                    s.set_style(
                        ProgressStyle::with_template("{spinner} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    s.enable_steady_tick(Duration::from_millis(120));
                    s
                });
                let trimmed = line.trim();
                // Docker says `Step 1/4 :`, Podman `STEP 1/4:`, BuildKit `#5 [2/4] RUN make`
                // when a step starts (and `#5 ERROR: …` when it fails).
                if trimmed
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case("step "))
                    || is_buildkit_step(trimmed)
                {
                    let _ = self.multi.println(format!("build: {trimmed}"));
                }
                if !trimmed.is_empty() {
                    spinner.set_message(trimmed.to_string());
                }
            }
            Progress::Hook { hook, entry, line } => {
                let _ = self.multi.println(match entry {
                    Some(entry) => format!("{hook} ({entry}): {line}"),
                    None => format!("{hook}: {line}"),
                });
            }
            Progress::Warning { message, .. } => {
                let _ = self.multi.println(format!("warning: {message}"));
            }
            other => {
                let _ = self.multi.println(format!("{other:?}"));
            }
        }
    }

    fn clear(&mut self) {
        for (_, bar) in self.layers.drain() {
            bar.finish_and_clear();
        }
        if let Some(s) = self.build.take() {
            s.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// Whether a BuildKit progress line opens a Dockerfile step (`#5 [2/4] RUN make`) or reports a
/// failure (`#5 ERROR: …`), the lines worth keeping above the spinner.
fn is_buildkit_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('#') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &rest[digits..];
    digits > 0 && (rest.starts_with(" [") || rest.starts_with(" ERROR:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_step_lines_are_recognised() {
        assert!(is_buildkit_step("#5 [2/4] RUN make"));
        assert!(is_buildkit_step("#12 [internal] load build definition"));
        assert!(is_buildkit_step("#5 ERROR: executor failed"));
        for line in [
            "#5 DONE 0.3s",
            "#5 compiling",
            "# comment",
            "#x [a]",
            "Step 1/2 : FROM x",
        ] {
            assert!(!is_buildkit_step(line), "{line}");
        }
    }
}
