//! Progress on stderr: a redrawn bar on a terminal, a plain counter line now and then otherwise
//! (CI logs, `2> file`). stdout stays clean for the table or the JSON.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    total: usize,
    done: usize,
    bad: usize,
    tty: bool,
    last_line: Option<Instant>,
    out: Box<dyn Write + Send>,
}

const BAR_WIDTH: usize = 30;
const PLAIN_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    pub fn stderr(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            bad: 0,
            tty: std::io::stderr().is_terminal(),
            last_line: None,
            out: Box::new(std::io::stderr()),
        }
    }

    /// A line of news (preflight results, batches sent); keeps the bar below it. The news may
    /// quote an AWS error, so it is escaped like every other outside string on a terminal.
    pub fn note(&mut self, msg: &str) {
        let msg = crate::util::escape::for_terminal(msg);
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2K{msg}\n{}", self.bar_line());
        } else {
            let _ = writeln!(self.out, "fleet status: {msg}");
        }
        let _ = self.out.flush();
    }

    /// One more instance answered (or was given up on); `bad` if it is not healthy.
    pub fn tick(&mut self, bad: bool) {
        self.done += 1;
        self.bad += usize::from(bad);
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2K{}", self.bar_line());
        } else if self.done == self.total
            || self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY)
        {
            self.last_line = Some(Instant::now());
            let _ = writeln!(
                self.out,
                "fleet status: {}",
                counter(self.done, self.total, self.bad)
            );
        }
        let _ = self.out.flush();
    }

    pub fn finish(&mut self) {
        if self.tty {
            let _ = writeln!(self.out, "\r\x1b[2K{}", self.bar_line());
        }
        let _ = self.out.flush();
    }

    fn bar_line(&self) -> String {
        format!(
            "{} {}",
            bar(self.done, self.total, BAR_WIDTH),
            counter(self.done, self.total, self.bad)
        )
    }
}

/// `[#########.....................]`
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// `120/500 answered, 7 not healthy`
pub fn counter(done: usize, total: usize, bad: usize) -> String {
    format!("{done}/{total} answered, {bad} not healthy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_proportionally() {
        assert_eq!(bar(0, 4, 8), "[........]");
        assert_eq!(bar(2, 4, 8), "[####....]");
        assert_eq!(bar(4, 4, 8), "[########]");
        assert_eq!(bar(0, 0, 4), "[####]");
    }

    #[test]
    fn plain_counter() {
        assert_eq!(counter(3, 10, 1), "3/10 answered, 1 not healthy");
    }
}
