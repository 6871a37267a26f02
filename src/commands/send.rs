//! `envoi send`: check everything, plan from the delivery log, confirm, deliver, summarise.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use lettre::Address;

use crate::cli::{GlobalArgs, SendArgs};
use crate::commands::problem_list::ProblemList;
use crate::commands::{Outcome, file_sent, open_log_with_history, plural};
use crate::delivery::relay::Relay;
use crate::delivery::{Delivery, Observer, RunReport};
use crate::delivery_log::{Entry, History, Status};
use crate::error::{Error, Location, Problem};
use crate::mailbox::filing::{Filer, FilingObserver};
use crate::pipeline::{Pipeline, RowFilter, RowScan};
use crate::send_plan::{Decision, SendPlan};
use crate::spool::Spool;

pub fn execute(global: &GlobalArgs, args: &SendArgs) -> Result<Outcome, Error> {
    let test_to = match &args.test_to {
        Some(addr) => Some(
            crate::compose::parse_address(addr.trim())
                .map_err(|e| Error::input(Location::file("--test-to"), e.to_string()))?,
        ),
        None => None,
    };
    let pipeline = Pipeline::open(global.campaign_paths(), test_to.clone())?.with_signing()?;
    let campaign = &pipeline.campaign;
    let config_display = campaign.config_display();

    // Configuration first: a bad relay setting should not wait for 10,000 rows to render.
    let mut problems: Vec<Problem> = Vec::new();
    let smtp = campaign
        .smtp_settings(&global.smtp_overrides())
        .map_err(|p| problems.extend(p))
        .ok();
    let policy = campaign.send_policy().map_err(|p| problems.extend(p)).ok();
    let tracking = campaign
        .tracking_settings()
        .map_err(|p| problems.extend(p))
        .ok();
    let (Some(smtp), Some(policy), Some(tracking)) = (smtp, policy, tracking) else {
        return Err(Error::Problems(problems));
    };
    let secret = smtp.password.read().map_err(|e| {
        Error::input(
            Location::file(config_display).setting("smtp", "password_command"),
            e.to_string(),
        )
    })?;
    let relay = Relay::new(&smtp, secret)
        .map_err(|e| {
            Error::input(
                Location::file(config_display).setting("smtp", ""),
                e.to_string(),
            )
        })?
        .with_tracking(tracking);
    // [mailbox] sent_folder: a copy of every accepted letter (see commands::file_sent).
    let sent_folder = match args.dry_run || test_to.is_some() {
        true => None,
        false => file_sent::open(campaign)?,
    };

    let selection = RowFilter::new(&args.selection.rows, None);

    // The log is opened (and locked) before planning, so that a second `envoi send` on the
    // same log cannot plan from a history that is about to change; it is read once, as it is
    // opened. A dry run writes nothing, so it only reads the log (if there is one).
    let log_display = &args.log;
    let log_path = global.dir.join(log_display);
    let log_is_new = !log_path.exists();
    let (log, history) = match (&test_to, args.dry_run) {
        (Some(_), _) => (None, History::default()),
        (None, true) if log_is_new => (None, History::default()),
        (None, true) => (None, History::read(&log_path)?),
        (None, false) => {
            let (log, history) = open_log_with_history(&log_path)?;
            (Some(log), history)
        }
    };
    // Declared after `log`, so it is dropped first: the files go while the lock is still held.
    let mut fresh_log = (log.is_some() && log_is_new).then(|| FreshLog::new(&log_path));
    // Only a dry run reads the log without opening it, and hears here what send would refuse.
    for warning in history.warnings() {
        eprintln!("warning: {warning}");
    }

    // The one pass over the recipients file: render and check every selected letter, decide
    // which to send, and spool those (see `spool`): delivery sends what was checked here.
    let recipients_path = campaign.path(campaign.recipients_display());
    let mut plan = SendPlan::new(&recipients_path, args.resend, args.selection.limit);
    let scan = RowScan::new(&selection);
    let mut spool = Spool::new();
    // Composed on every core; the letters come here in row order, so the plan, the listing
    // and the spool are what one thread would make.
    pipeline.each_letter(&selection, Some(&scan), |letter| {
        let (composed, problems) = match letter.result {
            Ok(composed) => (Some(composed), None),
            Err(problems) => (None, Some(problems)),
        };
        let decision = plan.consider(
            &history,
            letter.row,
            &letter.email,
            &letter.organisation,
            problems,
        );
        if args.dry_run {
            let what = match decision {
                Decision::Send => "would send".to_owned(),
                Decision::AlreadyDone(status) => format!("already {status}, not sent again"),
                Decision::OverLimit => "beyond --limit, not this run".to_owned(),
                Decision::Bad => "has problems, skipped".to_owned(),
            };
            println!("row {:>5}  {what}  {}", letter.row, letter.email);
        } else if let (Decision::Send, Some(composed)) = (decision, composed) {
            spool.push(&composed).map_err(spool_error)?;
        }
        Ok::<_, Error>(ControlFlow::Continue(()))
    })?;
    // A file with no rows, or without a row --row names: refused before anything is written.
    scan.finish(&pipeline)?;
    if !plan.bad().is_empty() && !args.skip_bad_rows {
        let mut list = ProblemList::default();
        for bad in plan.bad() {
            bad.problems.iter().for_each(|p| list.add(p.clone()));
        }
        list.finish();
        return Err(Error::Reported(format!(
            "{} {} problems (listed above); nothing was sent. Correct them, or send the others with --skip-bad-rows",
            plural(plan.bad().len(), "letter"),
            if plan.bad().len() == 1 { "has" } else { "have" }
        )));
    }
    if let Some(signer) = pipeline.signer()
        && let Some(problem) =
            signer.expiry_problem(pipeline.settings.date, plan.len(), policy.rate)
    {
        return Err(problem.into());
    }
    if args.dry_run {
        println!(
            "\ndry run: {} would be sent via {}, {} already went out according to {}, {} skipped for problems; nothing was sent, nothing written",
            plural(plan.len(), "letter"),
            relay.describe(),
            plan.already_done(),
            log_display.display(),
            plan.bad().len()
        );
        return Ok(Outcome::Done);
    }
    if plan.is_empty() && plan.bad().is_empty() {
        let why = if plan.already_done() > 0 {
            format!(
                "nothing to send: the {} selected already went out according to {} (sent or unknown, or delayed, delivered, bounced or read since; use --resend to send again)",
                plural(plan.already_done(), "letter"),
                log_display.display()
            )
        } else if args.selection.limit == Some(0) {
            "nothing to send: --limit 0 selects no letter".to_owned()
        } else {
            "nothing to send: no letter is selected (check --row and --limit)".to_owned()
        };
        println!("{why}");
        if let Some(folder) = sent_folder {
            file_sent::catch_up(folder, &pipeline, &log_path);
        }
        return Ok(Outcome::Done);
    }

    if !args.yes {
        let sample = spool.letters().map_err(spool_error)?.next().transpose();
        confirm(
            &plan,
            &relay,
            sample.map_err(spool_error)?.as_ref(),
            test_to.as_ref(),
        )?;
    }
    // The file may have changed while envoi waited for "yes": then the plan is not its plan.
    plan.check_file(&recipients_path).map_err(|changed| {
        Error::input(
            Location::file(campaign.recipients_display()),
            changed.to_string(),
        )
    })?;

    let halt = Arc::new(AtomicBool::new(false));
    install_interrupt_handler(&halt);
    let observer = Progress::new(plan.len() as u64);

    // From here on the run records what it does, so the log stays whatever happens.
    if let Some(fresh) = fresh_log.take() {
        fresh.keep();
    }

    // Bad rows are logged as skipped so the log accounts for every recipient.
    let mut skipped = 0;
    if let Some(log) = &log {
        for bad in plan.bad() {
            let detail = bad
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let entry = Entry::now(bad.row, &bad.email, &bad.organisation, Status::Skipped)
                .with_detail(&detail);
            log.record(&entry)?;
            observer.logged(&entry, true);
            skipped += 1;
        }
    }

    let filer = sent_folder.map(Filer::start);
    let filing = filer.as_ref().map(|filer| FilingObserver {
        inner: &observer,
        filer,
    });
    let delivery = Delivery {
        relay: &relay,
        policy,
        log: log.as_ref(),
        halt: &halt,
        observer: match &filing {
            Some(filing) => filing,
            None => &observer,
        },
    };
    // Delivery streams the spool; a spool that cannot be read back stops the run there.
    let mut unreadable = None;
    let report = delivery.run(
        spool
            .letters()
            .map_err(spool_error)?
            .map_while(|letter| letter.map_err(|e| unreadable = Some(e)).ok()),
    );
    observer.done();
    print_summary(
        &report,
        skipped,
        plan.already_done(),
        log.as_ref().map(|_| log_display.as_path()),
    );
    if let Some(e) = unreadable {
        return Err(Error::Stopped(format!(
            "{e}; the letters not sent are not in the log, run send again to send them"
        )));
    }
    if let Some(filer) = filer {
        file_sent::finish(filer, &pipeline, &log_path);
    }

    let totals = &report.totals;
    Ok(if report.stopped.is_some() {
        Outcome::Stopped
    } else if totals.failed + totals.unknown + skipped > 0 {
        Outcome::Incomplete
    } else {
        Outcome::Done
    })
}

fn spool_error(e: crate::spool::SpoolError) -> Error {
    Error::Stopped(e.to_string())
}

/// A delivery log that this run created. Exit 2 promises that nothing was sent or written, so
/// a run refused before it recorded anything (bad rows, no confirmation) removes the log and
/// its journal again; once sending starts, [`FreshLog::keep`] leaves them.
struct FreshLog {
    log: PathBuf,
    armed: bool,
}

impl FreshLog {
    fn new(log: &Path) -> FreshLog {
        FreshLog {
            log: log.to_path_buf(),
            armed: true,
        }
    }

    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for FreshLog {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(crate::delivery_log::journal_path(&self.log));
            let _ = std::fs::remove_file(crate::delivery_log::lock_path(&self.log));
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn confirm(
    plan: &SendPlan,
    relay: &Relay,
    sample: Option<&crate::compose::Composed>,
    test_to: Option<&Address>,
) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            Location::file("send"),
            "not on a terminal, so envoi cannot ask for confirmation; add --yes to send (or --dry-run to try)",
        ));
    }
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "About to send {} via {}",
        plural(plan.len(), "letter"),
        relay.describe()
    );
    if let Some(c) = sample {
        let _ = writeln!(err, "  from    {}", c.from);
        let _ = writeln!(err, "  e.g.    row {}: {} — \"{}\"", c.row, c.to, c.subject);
    }
    if let Some(t) = test_to {
        let _ = writeln!(err, "  TEST: every letter goes to {t} only");
    }
    if !plan.bad().is_empty() {
        let _ = writeln!(
            err,
            "  {} with problems will be skipped",
            plural(plan.bad().len(), "row")
        );
    }
    let _ = write!(err, "Type yes to send: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("standard input", "cannot read", e))?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(Error::input(
            Location::file("send"),
            "not confirmed; nothing was sent",
        ))
    }
}

/// First Ctrl-C: finish the letters in flight, start no new one. Second: leave at once (the
/// intent journal makes even that safe).
fn install_interrupt_handler(halt: &Arc<AtomicBool>) {
    let halt = Arc::clone(halt);
    let _ = ctrlc::set_handler(move || {
        if halt.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(crate::error::EXIT_STOPPED));
        }
        eprintln!(
            "\nstopping: finishing the letters in flight (press Ctrl-C again to quit at once)"
        );
    });
}

/// A progress bar on a terminal; one plain line per letter otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    lines: Mutex<()>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("sending");
            bar
        });
        Progress {
            bar,
            lines: Mutex::new(()),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn logged(&self, entry: &Entry, last: bool) {
        let line = format!(
            "row {:>5}  {:<8} {}  {}{}",
            entry.row,
            entry.status.to_string(),
            entry.email,
            if entry.code.is_empty() {
                String::new()
            } else {
                format!("{} ", entry.code)
            },
            entry.detail
        );
        match &self.bar {
            Some(bar) => {
                if last {
                    bar.inc(1);
                }
                if entry.status != Status::Sent {
                    bar.println(line);
                }
            }
            None => {
                let _guard = self.lines.lock();
                println!("{line}");
            }
        }
    }

    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}

fn print_summary(
    report: &RunReport,
    skipped: usize,
    already: usize,
    log: Option<&std::path::Path>,
) {
    let t = &report.totals;
    let secs = report.elapsed.as_secs_f64();
    let done = t.sent + t.failed + t.unknown;
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    println!(
        "\nsent {}, failed {}, unknown {}, skipped {}{} in {:.1} s ({:.1} letters/s)",
        t.sent,
        t.failed,
        t.unknown,
        skipped,
        if already > 0 {
            format!(" ({already} already done earlier)")
        } else {
            String::new()
        },
        secs,
        rate
    );
    if let Some(reason) = &report.stopped {
        eprintln!("stopped: {reason}");
    }
    if let Some(log) = log {
        println!(
            "delivery log: {} (envoi report shows every letter that did not end sent)",
            log.display()
        );
    }
}
