//! Reconciles what the relay received with what the delivery log says, for the soak and crash
//! tests: every letter the relay got is recorded, none twice, and each recipient's last status
//! tells the truth about it.

use std::collections::HashMap;

use crate::support::campaign::{LogRow, TestCampaign};
use crate::support::smtp_server::{Received, SmtpServer};

/// The Message-ID header of a received message, as written (with angle brackets).
pub fn message_id(received: &Received) -> Option<String> {
    let text = received.text();
    let headers = text.split("\r\n\r\n").next().unwrap_or("");
    headers.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_owned())
    })
}

/// A retried attempt's row: not an outcome, the letter is tried again.
pub fn is_retry(row: &LogRow) -> bool {
    row.status == "failed" && row.detail.contains("retrying in")
}

/// What one run (or a series of runs) came to.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Final status -> how many recipients ended with it.
    pub by_status: HashMap<String, usize>,
    /// Letters the relay has that the log calls unknown.
    pub unknown_arrived: usize,
}

/// Checks the relay against the log for `emails` (every recipient of the campaign).
///
/// * Every letter received is recorded: its Message-ID is in the log, for the address it was
///   delivered to, and no Message-ID arrived twice.
/// * A recipient whose last status is `sent` was received exactly once; `failed` or `skipped`,
///   never; `unknown`, at most once. A recipient with no status at all is an omission.
/// * With `one_run`, each recipient also has exactly one outcome row (retries aside), and it
///   is its last row.
pub fn check(
    campaign: &TestCampaign,
    server: &SmtpServer,
    emails: &[String],
    one_run: bool,
) -> Accounting {
    let rows = campaign.log_rows();
    let mut last: HashMap<String, &LogRow> = HashMap::new();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut address_of_id: HashMap<&str, &str> = HashMap::new();
    for row in &rows {
        let key = row.email.to_lowercase();
        last.insert(key.clone(), row);
        if !is_retry(row) {
            *outcomes.entry(key).or_default() += 1;
        }
        if !row.message_id.is_empty() {
            let previous = address_of_id.insert(&row.message_id, &row.email);
            assert!(
                previous.is_none_or(|p| p.eq_ignore_ascii_case(&row.email)),
                "Message-ID {} is logged for {} and {}",
                row.message_id,
                previous.unwrap_or_default(),
                row.email
            );
        }
    }

    let received = server.received();
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for message in &received {
        let id = message_id(message).expect("every letter has a Message-ID");
        let Some(address) = address_of_id.get(id.as_str()) else {
            panic!(
                "the relay received {id} for {:?}, which the log does not record",
                message.rcpt_to
            );
        };
        assert_eq!(
            message.rcpt_to,
            vec![address.to_string()],
            "{id} went to the wrong recipient"
        );
        *arrivals.entry(id).or_default() += 1;
    }
    if let Some((id, n)) = arrivals.iter().find(|(_, n)| **n > 1) {
        panic!("{id} arrived {n} times");
    }

    let mut accounting = Accounting::default();
    for email in emails {
        let key = email.to_lowercase();
        let Some(row) = last.get(&key) else {
            panic!("{email} has no status in the log: an omission");
        };
        assert!(!is_retry(row), "{email} ends on a retry: {row:?}");
        if one_run {
            assert_eq!(outcomes.get(&key), Some(&1), "{email}: {rows:?}");
        }
        let arrived = arrivals.get(&row.message_id).copied().unwrap_or(0);
        match row.status.as_str() {
            "sent" => assert_eq!(arrived, 1, "{email} is logged sent: {row:?}"),
            "failed" | "skipped" => assert_eq!(arrived, 0, "{email} is logged {}", row.status),
            "unknown" => accounting.unknown_arrived += arrived,
            other => panic!("{email} ends with status {other}"),
        }
        *accounting.by_status.entry(row.status.clone()).or_default() += 1;
    }
    // Every received letter belongs to a recipient of this campaign.
    let total: usize = arrivals.values().sum();
    assert_eq!(total, received.len());
    accounting
}
