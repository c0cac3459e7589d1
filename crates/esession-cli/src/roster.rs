//! `esession roster list|add|remove|approve` (issue 15): the contact list
//! and presence subscriptions, so that contacts can see us online (some
//! clients need our full JID to start a session) and we answer only those
//! subscribed to our presence (SSN-09).

use esession_xmpp::EsessionClient;
use jid::BareJid;
use serde_json::json;

use crate::account::{Inbox, login, manager, open_store};
use crate::settings::Settings;

/// `esession roster` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum RosterCommand {
    /// List the contacts: JID, name, subscription (both, from: they see us,
    /// to: we see them, none) and a pending request of ours.
    List {
        /// One JSON object per contact.
        #[arg(long)]
        json: bool,
    },
    /// Add a contact and ask to see their presence.
    Add {
        /// The contact's bare JID.
        contact: String,
        /// A name for the contact.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a contact (both subscriptions end).
    Remove {
        /// The contact's bare JID.
        contact: String,
    },
    /// Let a contact see our presence (approve their request, or allow it in advance).
    Approve {
        /// The contact's bare JID.
        contact: String,
    },
}

/// Runs a roster command: logs in (not reading what waits for us), does it, leaves.
pub(crate) async fn run(settings: &Settings, command: RosterCommand) -> Result<(), String> {
    let store = open_store(settings)?;
    let mut client = login(
        settings,
        manager(settings, &store, esession::Config::default())?,
        Inbox::Ignores,
    )
    .await?;
    let result = act(settings, &mut client, command).await;
    client.disconnect().await;
    result
}

async fn act(
    settings: &Settings,
    client: &mut EsessionClient,
    command: RosterCommand,
) -> Result<(), String> {
    let contact = |jid: &str| -> Result<BareJid, String> {
        let checked = settings.check_contact(jid)?;
        BareJid::new(&checked).map_err(|_| {
            format!("{jid} names one client (a full JID): the roster holds contacts, give their bare JID")
        })
    };
    match command {
        RosterCommand::List { json: as_json } => {
            let entries = client.roster().await.map_err(|e| e.to_string())?;
            if entries.is_empty() && !as_json {
                eprintln!("The roster is empty: `esession roster add CONTACT` adds one.");
            }
            for entry in entries {
                if as_json {
                    println!(
                        "{}",
                        json!({"jid": entry.jid.as_str(), "name": entry.name,
                               "subscription": entry.subscription, "pending": entry.pending})
                    );
                } else {
                    let name = entry.name.map(|n| format!(" ({n})")).unwrap_or_default();
                    let pending = if entry.pending {
                        ", request pending"
                    } else {
                        ""
                    };
                    println!(
                        "{}{name}: {}{pending}",
                        entry.jid,
                        describe(entry.subscription)
                    );
                }
            }
        }
        RosterCommand::Add { contact: jid, name } => {
            let jid = contact(&jid)?;
            client
                .roster_add(&jid, name.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Added {jid} and asked to see their presence; they see yours once you run \
                 `esession roster approve {jid}` (or approve in `chat`)."
            );
        }
        RosterCommand::Remove { contact: jid } => {
            let jid = contact(&jid)?;
            client
                .roster_remove(&jid)
                .await
                .map_err(|e| e.to_string())?;
            println!("Removed {jid}: neither of you sees the other's presence any more.");
        }
        RosterCommand::Approve { contact: jid } => {
            let jid = contact(&jid)?;
            client
                .approve_subscription(&jid)
                .await
                .map_err(|e| e.to_string())?;
            println!("{jid} may now see when you are online.");
        }
    }
    Ok(())
}

/// A subscription state for a person.
fn describe(subscription: &str) -> &'static str {
    match subscription {
        "both" => "each sees the other's presence",
        "from" => "they see your presence, you do not see theirs",
        "to" => "you see their presence, they do not see yours",
        _ => "neither sees the other's presence",
    }
}
