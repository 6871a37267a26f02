//! SMTP PIPELINING (RFC 2920): where the relay offers it, MAIL, every RCPT and DATA go out in
//! one write and the replies are read afterwards, in order. Each behaviour runs against a
//! relay that offers it and one that does not: the outcome must be the same.

use crate::support::campaign::TestCampaign;
use crate::support::relay::{RelayConfig, deliveries_to, rcpt_count};
use crate::support::smtp_server::{Fault, FaultFn, Faults, Phase, ServerConfig, SmtpServer};

/// A To with three Cc and a Bcc, then a letter to one address.
const COPIES: &str = "email,organisation,name,salutation,language,cc,bcc\n\
    sg@un.example,United Nations,António Guterres,Your Excellency,,a@un.example;b@un.example;c@un.example,archive@ombudsman.example\n\
    sg@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,,,\n";

const UN: [&str; 5] = [
    "sg@un.example",
    "a@un.example",
    "b@un.example",
    "c@un.example",
    "archive@ombudsman.example",
];

/// The relay with and without PIPELINING, each with `faults`, and `COPIES` sent to it over
/// one connection.
fn both_ways(faults: impl Fn() -> FaultFn) -> [(bool, SmtpServer, TestCampaign); 2] {
    [true, false].map(|pipelining| {
        let config = ServerConfig::default().with_faults(faults());
        let config = match pipelining {
            true => config,
            false => config.without_pipelining(),
        };
        let server = SmtpServer::start(config);
        let campaign = RelayConfig::plain(&server).concurrency(1).campaign(COPIES);
        (pipelining, server, campaign)
    })
}

fn reply(code: u16, text: &str) -> Fault {
    Fault::Reply(code, text.into())
}

#[test]
fn the_envelope_goes_in_one_write_only_where_the_relay_offers_pipelining() {
    for (pipelining, server, campaign) in both_ways(Faults::none) {
        campaign.send(&[]).expect_code(0);
        for address in UN {
            assert_eq!(deliveries_to(&server, address), 1, "{address}");
        }
        campaign.only_row("sg@un.example", "sent");
        campaign.only_row("sg@coe.example", "sent");
        // Pipelined: MAIL and the five RCPTs of the first letter, MAIL and the RCPT of the
        // second, arrive with the command after them (the last one, DATA, waits for nothing
        // behind it). Otherwise every command waits for its reply.
        let expected = if pipelining { 6 + 2 } else { 0 };
        assert_eq!(
            server.commands_sent_ahead(),
            expected,
            "pipelining {pipelining}"
        );
        assert_eq!(server.connections_opened(), 1);
    }
}

#[test]
fn too_many_recipients_need_not_be_the_last_ones() {
    // The first transaction refuses a@ alone as one too many (a relay with a per-domain
    // count does this); the others are accepted.
    let faults = || {
        Faults::from_fn(|step| match step.phase {
            Phase::Rcpt { to } if to == "a@un.example" && step.message == 1 => {
                Some(reply(452, "4.5.3 Error: too many recipients"))
            }
            _ => None,
        })
    };
    for (pipelining, server, campaign) in both_ways(faults) {
        campaign.send(&[]).expect_code(0);
        let envelopes: Vec<Vec<String>> = server
            .received()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| UN.contains(&r.as_str())))
            .map(|m| m.rcpt_to.clone())
            .collect();
        // Pipelined, the relay answered every RCPT: only a@ is left for transaction 2.
        // Waiting for each reply, envoi stops asking at the first 452.
        let expected: [&[&str]; 2] = if pipelining {
            [
                &[
                    "sg@un.example",
                    "b@un.example",
                    "c@un.example",
                    "archive@ombudsman.example",
                ],
                &["a@un.example"],
            ]
        } else {
            [
                &["sg@un.example"],
                &[
                    "a@un.example",
                    "b@un.example",
                    "c@un.example",
                    "archive@ombudsman.example",
                ],
            ]
        };
        assert_eq!(envelopes, expected, "pipelining {pipelining}");
        for address in UN {
            assert_eq!(
                deliveries_to(&server, address),
                1,
                "{address}, pipelining {pipelining}"
            );
        }
        let row = campaign.only_row("sg@un.example", "sent");
        assert!(
            row.detail.contains("transaction 2 sent the same letter to"),
            "{row:?}"
        );
    }
}

#[test]
fn a_refused_addressee_sends_no_content_even_when_a_cc_was_accepted() {
    let faults = || Faults::on_recipient("sg@un.example", reply(550, "5.1.1 User unknown"));
    for (pipelining, server, campaign) in both_ways(faults) {
        campaign.send(&[]).expect_code(1);
        let row = campaign.only_row("sg@un.example", "failed");
        assert_eq!(
            (row.code.as_str(), row.detail.as_str()),
            ("550 5.1.1", "User unknown")
        );
        // Nothing reached a Cc, and the next letter went out.
        assert_eq!(server.received_count(), 1, "pipelining {pipelining}");
        assert_eq!(deliveries_to(&server, "a@un.example"), 0);
        campaign.only_row("sg@coe.example", "sent");
        if pipelining {
            // The relay had answered DATA with 354: the connection was dropped before any
            // content, and the next letter took a new one.
            assert_eq!(server.connections_opened(), 2);
        } else {
            // DATA was never sent; RSET kept the connection.
            assert_eq!(server.connections_opened(), 1);
            let transcript = server.transcript(1);
            let datas = transcript.iter().filter(|c| *c == "DATA").count();
            assert_eq!(datas, 1, "only the second letter's: {transcript:?}");
            assert_eq!(rcpt_count(&server, "a@un.example"), 0);
        }
    }
}

#[test]
fn a_refused_data_resets_and_the_session_goes_on() {
    let faults = || {
        Faults::from_fn(|step| match step.phase {
            Phase::Data if step.message == 1 => {
                Some(reply(554, "5.5.1 Error: no valid recipients"))
            }
            _ => None,
        })
    };
    for (pipelining, server, campaign) in both_ways(faults) {
        campaign.send(&[]).expect_code(1);
        campaign.only_row("sg@un.example", "failed");
        campaign.only_row("sg@coe.example", "sent");
        assert_eq!(server.connections_opened(), 1, "pipelining {pipelining}");
        let transcript = server.transcript(1);
        let data = transcript.iter().position(|c| c == "DATA").unwrap();
        assert_eq!(transcript[data + 1], "RSET", "{transcript:?}");
    }
}

#[test]
fn a_connection_lost_before_the_content_is_a_safe_retry() {
    // The first DATA meets a dropped connection; the letter goes again on a new one.
    let faults = || {
        Faults::from_fn(|step| match step.phase {
            Phase::Data if step.message == 1 => Some(Fault::Drop),
            _ => None,
        })
    };
    for (pipelining, server, campaign) in both_ways(faults) {
        campaign.send(&[]).expect_code(0);
        for address in UN {
            assert_eq!(
                deliveries_to(&server, address),
                1,
                "{address}, pipelining {pipelining}"
            );
        }
        assert_eq!(
            campaign.final_status("sg@un.example").as_deref(),
            Some("sent")
        );
        assert_eq!(server.connections_opened(), 2);
    }
}

#[test]
fn a_connection_lost_after_the_content_is_unknown() {
    for (pipelining, server, campaign) in
        both_ways(|| Faults::on_message(1, Fault::DropAfterAccept))
    {
        campaign.send(&[]).expect_code(1);
        assert_eq!(
            campaign.final_status("sg@un.example").as_deref(),
            Some("unknown"),
            "pipelining {pipelining}"
        );
        assert_eq!(deliveries_to(&server, "sg@un.example"), 1);
        campaign.only_row("sg@coe.example", "sent");
    }
}

// The next letter's envelope behind this one's content (RFC 2920 3.1 lets message content open
// a group): one round trip a letter instead of two, where the relay offers PIPELINING and no
// rate spaces the letters.

/// `COPIES` sent both ways, the first letter's content answered `code text`; `exit` is what the
/// send must end with.
fn content_answered(
    code: u16,
    text: &'static str,
    exit: i32,
) -> [(bool, SmtpServer, TestCampaign); 2] {
    let runs = both_ways(|| Faults::on_message(1, reply(code, text)));
    for (_, _, campaign) in &runs {
        campaign.send(&[]).expect_code(exit);
    }
    runs
}

/// Each address of both letters got its letter once.
fn each_address_got_one(server: &SmtpServer, pipelining: bool) {
    for address in UN.iter().chain(&["sg@coe.example"]) {
        assert_eq!(
            deliveries_to(server, address),
            1,
            "{address}, pipelining {pipelining}"
        );
    }
}

#[test]
fn the_next_envelope_goes_behind_the_content_only_where_the_relay_offers_pipelining() {
    for (pipelining, server, campaign) in both_ways(Faults::none) {
        campaign.send(&[]).expect_code(0);
        // The second letter's MAIL, RCPT and DATA came with the first letter's final dot.
        let expected = if pipelining { 1 } else { 0 };
        assert_eq!(
            server.commands_behind_content(),
            expected,
            "pipelining {pipelining}"
        );
        each_address_got_one(&server, pipelining);
        campaign.only_row("sg@un.example", "sent");
        campaign.only_row("sg@coe.example", "sent");
        assert_eq!(server.connections_opened(), 1);
    }
}

#[test]
fn with_a_rate_no_envelope_goes_ahead() {
    // Letters spaced by a rate gain nothing from it, and the relay would wait in DATA.
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = RelayConfig::plain(&server)
        .concurrency(1)
        .rate("6000/min")
        .campaign(COPIES);
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.commands_behind_content(), 0);
    assert_eq!(server.received_count(), 2);
}

#[test]
fn a_refused_content_leaves_the_next_letter_opened_ahead_to_go_out() {
    for (pipelining, server, campaign) in content_answered(550, "5.7.1 Message content rejected", 1)
    {
        campaign.only_row("sg@un.example", "failed");
        campaign.only_row("sg@coe.example", "sent");
        assert_eq!(server.commands_behind_content(), u64::from(pipelining));
        assert_eq!(deliveries_to(&server, "sg@coe.example"), 1);
        assert_eq!(server.received_count(), 1, "pipelining {pipelining}");
        // The refusal ends that transaction only: the second letter's replies were read on the
        // same connection.
        assert_eq!(server.connections_opened(), 1, "pipelining {pipelining}");
    }
}

#[test]
fn a_deferred_content_drops_the_letter_opened_ahead_and_both_go_once() {
    // A 451 after the first letter's content: that connection is given up (with the second
    // letter's DATA answered 354 and no content), the first letter is tried again and the
    // second goes on a new connection. Each address gets each letter once.
    for (pipelining, server, campaign) in
        content_answered(451, "4.3.0 Error: queue file write error", 0)
    {
        // The second letter went ahead of the first one's refused content, and again behind
        // the retried first letter, on the new connection.
        assert_eq!(server.commands_behind_content(), 2 * u64::from(pipelining));
        each_address_got_one(&server, pipelining);
        assert_eq!(
            campaign.final_status("sg@un.example").as_deref(),
            Some("sent")
        );
        campaign.only_row("sg@coe.example", "sent");
        assert_eq!(server.connections_opened(), 2, "pipelining {pipelining}");
    }
}

#[test]
fn a_run_stopped_with_a_letter_opened_ahead_leaves_it_for_the_next_run() {
    // The quota runs out at the first letter's content, while the second letter's envelope is
    // already with the relay: the run stops, the second letter got no content and no log row,
    // and the next run sends it, once.
    for (pipelining, server, campaign) in
        content_answered(554, "5.4.5 Daily user sending quota exceeded", 3)
    {
        assert_eq!(server.commands_behind_content(), u64::from(pipelining));
        campaign.only_row("sg@un.example", "failed");
        assert!(
            campaign.rows_for("sg@coe.example").is_empty(),
            "pipelining {pipelining}"
        );
        assert_eq!(server.received_count(), 0);
        // The fault was for the server's first transaction only.
        campaign.send(&[]).expect_code(0);
        campaign.only_row("sg@coe.example", "sent");
        assert_eq!(deliveries_to(&server, "sg@coe.example"), 1);
    }
}
