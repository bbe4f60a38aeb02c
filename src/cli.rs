//! The `agedrop` command line (docs/admin.md and docs/journalist.md). Each command is a short function over the
//! library; errors are reported once, on stderr, with a non-zero exit.

use std::error::Error;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::account::{self, Token};
use crate::bundle::Status;
use crate::check::{self, Finding};
use crate::client::{ApiToken, Client, ClientError, Deletion, TlsFiles};
use crate::config::{Config, Database, Limits, Listen, Storage};
use crate::crypto::{self, Identities, NewsroomIdentity, Recipients};
use crate::cursor::{Cursor, CursorFile};
use crate::desk::{self, Desk};
use crate::logging::{self, LogFormat};
use crate::store::Store;
use crate::watch::{self, Intervals, Notify, Poll};
use crate::{backup, offline, server};

type CliResult = Result<(), Box<dyn Error>>;

/// agedrop: a secure document drop for newsrooms.
#[derive(Debug, Parser)]
#[command(name = "agedrop", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a throwaway demo: identity, token, config and server in one directory.
    Demo {
        /// Directory for the demo's files.
        #[arg(long, default_value = "agedrop-demo")]
        dir: PathBuf,
        /// Port of the source site; the journalist API gets PORT+1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Make a newsroom identity (on the offline machine) and print its age1… recipient.
    Keygen {
        /// Write the identity here (0600) instead of to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Protect the identity file with a passphrase (asked on the terminal).
        #[arg(long, requires = "output")]
        passphrase: bool,
        /// Make a post-quantum identity (`age1pq1…` recipient, ML-KEM-768 + X25519).
        /// Not yet with --passphrase: the identity file reader cannot open those.
        #[arg(long, conflicts_with = "passphrase")]
        pq: bool,
    },
    /// Manage journalist accounts (on the server).
    Journalist {
        #[command(subcommand)]
        action: JournalistAction,
        /// The server's config file.
        #[arg(long, default_value = "agedrop.toml", global = true)]
        config: PathBuf,
    },
    /// Fetch new ciphertext as a bundle (online workstation).
    Pull {
        #[command(flatten)]
        server: ServerArgs,
        /// Where to write the bundle.
        #[arg(short, long)]
        output: PathBuf,
        /// Fetch everything, not just what is new since the last pull.
        #[arg(long)]
        all: bool,
    },
    /// Upload replies (online workstation): one reply bundle made by `agedrop reply`,
    /// or every reply waiting in a desk's outbox.
    Push {
        #[command(flatten)]
        server: ServerArgs,
        /// The reply bundle.
        #[arg(required_unless_present = "outbox", conflicts_with = "outbox")]
        reply: Option<PathBuf>,
        /// A desk directory or its `outbox/` (carried over from the offline machine):
        /// sends every reply waiting there and moves each into `outbox/sent/`.
        #[arg(long)]
        outbox: Option<PathBuf>,
    },
    /// Poll the server through Tor at random intervals and run a command when items
    /// came since the last pull (online workstation). The command gets only the count.
    Watch {
        #[command(flatten)]
        server: ServerArgs,
        /// The program to run, with fixed arguments split at spaces (no shell, no
        /// quoting); the number of new items is added as its last argument.
        #[arg(long)]
        exec: String,
        /// Fewest seconds between polls.
        #[arg(long, default_value_t = 300)]
        interval_min: u64,
        /// Most seconds between polls; each wait is drawn at random in between.
        #[arg(long, default_value_t = 900)]
        interval_max: u64,
        /// Poll once, run the command if there are new items, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Check a server's config, data directory, sockets and (with --torrc) tor's
    /// onion services; one line per problem, then "ok" if there is none.
    Check {
        /// The config file.
        #[arg(long, default_value = "agedrop.toml")]
        config: PathBuf,
        /// tor's torrc, whose HiddenServicePort lines must lead to agedrop's listeners.
        #[arg(long)]
        torrc: Option<PathBuf>,
    },
    /// Back up the data directory while the server runs: a consistent snapshot of the
    /// database, the instance secret and every blob it names, as one tar file.
    Backup {
        /// The server's config file.
        #[arg(long, default_value = "agedrop.toml")]
        config: PathBuf,
        /// The new backup file (never overwritten), or `-` for stdout.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Rebuild a data directory from a backup, into a new or empty directory.
    Restore {
        /// The backup file from `agedrop backup`.
        archive: PathBuf,
        /// The data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Delete an item or a whole source on the server (online workstation).
    Delete {
        #[command(flatten)]
        server: ServerArgs,
        /// An item id from a bundle's manifest.
        #[arg(long, conflicts_with = "source", required_unless_present = "source")]
        item: Option<String>,
        /// A source id from a bundle's manifest: its items, replies, label and key.
        #[arg(long)]
        source: Option<String>,
    },
    /// Offline: import bundles into the desk (default ~/agedrop-desk), or with -o
    /// decrypt them into plain directories for scripts.
    Open {
        /// Bundles from `agedrop pull`, in any order.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Identity file (plain or passphrase-protected); repeat for several.
        #[arg(short, long = "identity", required = true)]
        identities: Vec<PathBuf>,
        /// The desk directory to import into.
        #[arg(long, conflicts_with = "output")]
        desk: Option<PathBuf>,
        /// Instead of a desk: write the decrypted files into DIR/<source label>/.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The newsroom's age1… recipients, which desk replies are encrypted to; only
        /// needed when the identity files are passphrase-protected.
        #[arg(long = "recipient", conflicts_with = "output")]
        recipients: Vec<String>,
    },
    /// Offline: serve the desk's inbox on 127.0.0.1 and print the URL to open.
    Desk {
        /// The desk directory (default ~/agedrop-desk).
        dir: Option<PathBuf>,
        /// Port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Offline: encrypt a reply to a source and the newsroom.
    Reply {
        /// The bundle the source came in.
        bundle: PathBuf,
        /// The newsroom identity file(s): the reply is also encrypted to their keys.
        #[arg(short, long = "identity", required_unless_present = "recipients")]
        identities: Vec<PathBuf>,
        /// The newsroom's age1… recipients, instead of -i.
        #[arg(long = "recipient", conflicts_with = "identities")]
        recipients: Vec<String>,
        /// The source's label (or id), as the bundle's manifest and `open` name it.
        #[arg(long)]
        source: String,
        /// A text file holding the reply.
        #[arg(long)]
        message: PathBuf,
        /// Where to write the reply bundle.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Create a data directory and agedrop.toml for a real deployment; or, with
    /// --config, the data directory an existing config names, and the shared state its
    /// [database] and [storage] name (a second node joins it).
    Init {
        /// A newsroom age1… recipient; repeat for several.
        #[arg(
            long = "recipient",
            required_unless_present = "config",
            conflicts_with = "config"
        )]
        recipients: Vec<String>,
        /// An existing config: make its data directory, and create (first node) or
        /// check and join (every other node) its database and bucket.
        #[arg(long, conflicts_with_all = ["dir", "data_dir"])]
        config: Option<PathBuf>,
        /// With --config: the instance secret of the drop's first node, copied into the
        /// new data directory (every node of one drop needs the same one).
        #[arg(long, requires = "config")]
        instance_secret: Option<PathBuf>,
        /// Where agedrop.toml goes.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The data directory (default: DIR/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The service user (e.g. agedrop), when run as root: the data directory
        /// becomes theirs and the config readable by their group (root-owned, 0640).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Apply the config's [retention] rules now (the server also does, every hour),
    /// and print how much was deleted.
    Retention {
        /// The server's config file.
        #[arg(long, default_value = "agedrop.toml")]
        config: PathBuf,
        /// Apply the rules as of this UTC day (YYYY-MM-DD) instead of today.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Serve the source site and the journalist API.
    Serve {
        /// The config file.
        #[arg(long, default_value = "agedrop.toml")]
        config: PathBuf,
        /// Run even as root (the data directory must then belong to root). Without it,
        /// `serve` as root is refused: files it made would be root's, and the service
        /// user could not read them later.
        #[arg(long)]
        allow_root: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JournalistAction {
    /// Add an account; prints its token once.
    Add {
        /// Account name (a-z, 0-9, . _ -).
        name: String,
        /// Limit the account to this desk's sources; repeat for several. Without it,
        /// the account sees every desk.
        #[arg(long = "desk")]
        desks: Vec<String>,
    },
    /// List accounts.
    List,
    /// Remove an account; its token stops working at once.
    Remove {
        /// Account name.
        name: String,
    },
}

/// How to reach the journalist API.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The journalist API, e.g. http://xyz.onion or https://drop.example:8443.
    #[arg(long)]
    server: String,
    /// File holding the token from `agedrop journalist add`.
    #[arg(long)]
    token_file: PathBuf,
    /// Tor's SOCKS port, e.g. socks5h://127.0.0.1:9050.
    #[arg(long)]
    proxy: Option<String>,
    /// For https: the CA certificate (PEM) that signed the server's certificate.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// For mutual TLS: this journalist's certificate (PEM).
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// For mutual TLS: its private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl ServerArgs {
    /// [`unreachable`] with this command's proxy.
    fn unreachable(&self, err: ClientError) -> String {
        unreachable(err, self.proxy.as_deref())
    }

    fn client(&self) -> Result<Client, ClientError> {
        let token = ApiToken::read(&self.token_file)?;
        let tls = TlsFiles {
            ca_cert: self.ca_cert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        };
        Client::new(&self.server, self.proxy.as_deref(), &tls, token)
    }

    /// Where `pull` remembers its cursor: beside the token file.
    fn cursor_file(&self) -> CursorFile {
        let mut name = self.token_file.as_os_str().to_owned();
        name.push(".cursor");
        CursorFile::new(PathBuf::from(name))
    }
}

/// Parses arguments, runs the command, reports any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Demo { dir, port } => demo(&dir, port),
        Command::Keygen {
            output,
            passphrase,
            pq,
        } => keygen(output.as_deref(), passphrase, pq),
        Command::Journalist { action, config } => journalist(&config, action),
        Command::Pull {
            server,
            output,
            all,
        } => pull(&server, &output, all),
        Command::Push {
            server,
            reply,
            outbox,
        } => match (reply, outbox) {
            (_, Some(outbox)) => push_outbox(&server, &outbox),
            (Some(reply), None) => push(&server, &reply),
            (None, None) => Err("give a reply bundle or --outbox DIR".into()),
        },
        Command::Delete {
            server,
            item,
            source,
        } => delete(&server, item.as_deref(), source.as_deref()),
        Command::Watch {
            server,
            exec,
            interval_min,
            interval_max,
            once,
        } => watch(&server, &exec, interval_min, interval_max, once),
        Command::Check { config, torrc } => check(&config, torrc.as_deref()),
        Command::Backup { config, output } => backup(&config, &output),
        Command::Restore { archive, data_dir } => restore(&archive, &data_dir),
        Command::Open {
            bundles,
            identities,
            desk,
            output,
            recipients,
        } => match output {
            Some(output) => open(&bundles, &identities, &output),
            None => import(&bundles, &identities, desk, &recipients),
        },
        Command::Desk { dir, port } => serve_desk(dir, port),
        Command::Reply {
            bundle,
            identities,
            recipients,
            source,
            message,
            output,
        } => reply(
            &bundle,
            &identities,
            &recipients,
            &source,
            &message,
            &output,
        ),
        Command::Init {
            config: Some(config),
            instance_secret,
            owner,
            ..
        } => init_from_config(&config, instance_secret.as_deref(), owner.as_deref()),
        Command::Init {
            recipients,
            dir,
            data_dir,
            owner,
            ..
        } => init(&recipients, &dir, data_dir.as_deref(), owner.as_deref()),
        Command::Serve { config, allow_root } => serve(&config, allow_root),
        Command::Retention { config, as_of } => retention(&config, as_of.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agedrop: error: {}", terminal_safe(&err.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Errors and reports can quote a server, a proxy or a file: no escape sequence
/// reaches the terminal. Line breaks stay (a config error points at its line).
fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

/// Writes a new file with mode 0600; refuses to overwrite.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), Box<dyn Error>> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

fn keygen(output: Option<&Path>, passphrase: bool, pq: bool) -> CliResult {
    let identity = if pq {
        NewsroomIdentity::generate_pq()
    } else {
        NewsroomIdentity::generate()
    };
    let text =
        identity.to_identity_file(&["agedrop newsroom identity: keep it on the offline machine"]);
    match output {
        Some(path) => {
            if passphrase {
                let pass = age::cli_common::read_secret(
                    "Passphrase for the new identity file",
                    "Passphrase",
                    Some("Confirm passphrase"),
                )
                .map_err(|e| format!("no passphrase: {e}"))?;
                if age::secrecy::ExposeSecret::expose_secret(&pass).is_empty() {
                    return Err("an empty passphrase protects nothing; give one".into());
                }
                let sealed = crypto::seal_with_passphrase(text.as_bytes(), pass)?;
                write_private(path, &sealed)?;
            } else {
                write_private(path, text.as_bytes())?;
            }
            eprintln!(
                "Identity written to {}. Put this recipient in the server's config:",
                path.display()
            );
            println!("{}", identity.recipient());
        }
        None => print!("{}", &*text),
    }
    Ok(())
}

fn journalist(config_path: &Path, action: JournalistAction) -> CliResult {
    let config = Config::load(config_path)?;
    let store = Store::open_shared(&config.data_dir, &config.storage, &config.database)
        .map_err(|e| format!("config key `{}`: {e}", e.config_key()))?;
    match action {
        JournalistAction::Add { name, mut desks } => {
            if !account::valid_name(&name) {
                return Err("a journalist name is 1 to 64 of a-z, 0-9, '.', '_', '-'".into());
            }
            for desk in &desks {
                if config.desks.get(desk).is_none() && !config.desks.is_retired(desk) {
                    let known: Vec<&str> = config.desks.iter().map(|d| d.id.as_str()).collect();
                    return Err(format!(
                        "no desk {desk:?} in {}; its desks are: {}",
                        config_path.display(),
                        known.join(", ")
                    )
                    .into());
                }
            }
            desks.sort();
            desks.dedup();
            let token = Token::generate();
            let scope = (!desks.is_empty()).then_some(desks.as_slice());
            store.add_journalist(&name, &token.id, &token.secret_hash(), scope)?;
            match scope {
                Some(desks) => eprintln!(
                    "Journalist {name} added, for desk(s) {}. Their token, shown only now:",
                    desks.join(", ")
                ),
                None => eprintln!(
                    "Journalist {name} added, for every desk. Their token, shown only now:"
                ),
            }
            println!("{}", token.expose());
        }
        JournalistAction::List => {
            for journalist in store.journalists()? {
                let desks = match &journalist.desks {
                    Some(desks) => desks.join(","),
                    None => "every desk".to_owned(),
                };
                println!("{}\t(since {})\t{desks}", journalist.name, journalist.day);
            }
        }
        JournalistAction::Remove { name } => {
            if !store.remove_journalist(&name)? {
                return Err(format!("no journalist named {name}").into());
            }
            eprintln!("Journalist {name} removed; their token no longer works.");
        }
    }
    Ok(())
}

/// Fails with the server's words for a status other than `expected`: at most 200
/// characters, with control characters (terminal escape sequences, line breaks) and
/// invisible direction marks replaced by `?`.
fn expect_status(
    response: crate::client::Response,
    expected: u16,
) -> Result<crate::client::Response, Box<dyn Error>> {
    if response.status == expected {
        return Ok(response);
    }
    let status = response.status;
    let text = response.text();
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(text);
    Err(format!("the server answered {status}: {}", server_words(&reason)).into())
}

/// Text from a server as it may be printed on a terminal.
fn server_words(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| {
            if c.is_control() || offline::is_invisible(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn pull(args: &ServerArgs, output: &Path, all: bool) -> CliResult {
    if fs::symlink_metadata(output).is_ok() {
        return Err(format!("{} exists already; not overwriting it", output.display()).into());
    }
    let cursor_file = args.cursor_file();
    let since = if all {
        Cursor::START
    } else {
        cursor_file.read()?
    };
    let client = args.client()?;
    // Made here, before anything is fetched, and never over an existing file: whatever
    // is at this path (an interrupted pull's leftover, a link) is not ours to reuse or
    // remove.
    let partial = output.with_extension("partial");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists already; not overwriting it (remove it if an interrupted pull left it)",
                partial.display()
            ),
            _ => format!("cannot create {}: {e}", partial.display()),
        })?;
    let mut placed = false;
    let fetched = (|| -> Result<offline::CheckedBundle, Box<dyn Error>> {
        let response = expect_status(client.export(since).map_err(|e| args.unreachable(e))?, 200)?;
        let mut body = response.body;
        std::io::copy(&mut body, &mut file)?;
        file.sync_all()?;
        let checked = offline::check_whole(&partial)?;
        // Never over a file that appeared at OUTPUT while the bundle was fetched.
        crate::nofollow::rename_noreplace(&partial, output).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} appeared while the bundle was fetched; not overwriting it",
                output.display()
            ),
            _ => format!("cannot move the bundle to {}: {e}", output.display()),
        })?;
        placed = true;
        // The bundle (and then the cursor) must survive a power loss together.
        crate::fsync::sync_parent(output)?;
        Ok(checked)
    })();
    let checked = match fetched {
        Ok(checked) => checked,
        Err(err) => {
            // This run created the partial file (create_new above): only it goes, and
            // only while it still has that name.
            if !placed {
                let _ = fs::remove_file(&partial);
            }
            return Err(err);
        }
    };
    cursor_file.write(checked.next_cursor)?;
    eprintln!(
        "{} new item(s) and {} reply(ies) in {}. Carry it to the offline machine and import \
         it into the desk: agedrop open BUNDLE -i IDENTITY",
        checked.items,
        checked.replies,
        output.display()
    );
    Ok(())
}

fn push(args: &ServerArgs, reply: &Path) -> CliResult {
    send_reply(&args.client()?, args.proxy.as_deref(), reply)?;
    eprintln!("Reply delivered.");
    Ok(())
}

/// Sends one reply bundle; refuses anything else before connecting.
fn send_reply(client: &Client, proxy: Option<&str>, reply: &Path) -> CliResult {
    let mut file =
        fs::File::open(reply).map_err(|e| format!("cannot read {}: {e}", reply.display()))?;
    // A mistyped path (a decrypted document, the token file) must never leave the
    // machine: only a reply bundle is sent.
    if !is_reply_bundle(&mut file) {
        return Err(format!(
            "{} is not a reply bundle made by `agedrop reply`; nothing was sent",
            reply.display()
        )
        .into());
    }
    std::io::Seek::rewind(&mut file)?;
    let len = file.metadata()?.len();
    let response = client
        .push_reply(&mut file, len)
        .map_err(|e| unreachable(e, proxy))?;
    expect_status(response, 201)?;
    Ok(())
}

/// Sends every reply waiting in a desk's outbox, oldest first, moving each into
/// `sent/` once the server has stored it; stops at the first failure (what was sent
/// stays moved, the rest stays waiting).
fn push_outbox(args: &ServerArgs, dir: &Path) -> CliResult {
    let (outbox, pending) = desk::pending_replies(dir)?;
    if pending.is_empty() {
        eprintln!("No replies waiting in {}.", outbox.display());
        return Ok(());
    }
    let client = args.client()?;
    for (sent, reply) in pending.iter().enumerate() {
        if let Err(err) = send_reply(&client, args.proxy.as_deref(), reply) {
            return Err(format!(
                "{sent} of {} replies delivered; stopped at {}: {err}",
                pending.len(),
                reply.display()
            )
            .into());
        }
        desk::mark_sent(&outbox, reply).map_err(|e| {
            format!(
                "delivered {}, but cannot move it into sent/: {e}",
                reply.display()
            )
        })?;
    }
    eprintln!("{} replies delivered.", pending.len());
    Ok(())
}

/// Whether `file` starts with a reply manifest of our format.
fn is_reply_bundle(file: &mut fs::File) -> bool {
    use crate::bundle::{self, ReplyManifest, TarReader};
    let mut tar = TarReader::new(&mut *file);
    let Ok(Some(first)) = tar.next_entry() else {
        return false;
    };
    if first.name != bundle::REPLY_MANIFEST {
        return false;
    }
    bundle::read_small(&mut tar, &first, 1024 * 1024)
        .ok()
        .and_then(|json| serde_json::from_slice::<ReplyManifest>(&json).ok())
        .is_some_and(|m| m.format == bundle::REPLY_FORMAT && m.version == bundle::REPLY_VERSION)
}

fn delete(args: &ServerArgs, item: Option<&str>, source: Option<&str>) -> CliResult {
    let (what, id) = match (item, source) {
        (Some(id), _) => (Deletion::Item(id), id),
        (None, Some(id)) => (Deletion::Source(id), id),
        (None, None) => return Err("give --item or --source".into()),
    };
    // Checked before the token is read, as the client checks it again.
    if !crate::bundle::is_id(id) {
        return Err(ClientError::NotAnId.into());
    }
    let client = args.client()?;
    expect_status(client.delete(what).map_err(|e| args.unreachable(e))?, 204)?;
    eprintln!("Deleted.");
    Ok(())
}

fn watch(args: &ServerArgs, exec: &str, min: u64, max: u64, once: bool) -> CliResult {
    let notify = Notify::parse(exec)?;
    let intervals = Intervals::new(min, max)?;
    let client = args.client()?;
    if !once {
        eprintln!(
            "Watching: polling every {min} to {max} s at random; {exec} runs when items come."
        );
    }
    watch::watch(
        || poll_status(&client, args.proxy.as_deref()),
        &notify,
        intervals,
        once,
        |line| eprintln!("agedrop: watch: {}", terminal_safe(line)),
    )?;
    Ok(())
}

/// A request that never got an answer, said so that the likely cause shows: with a
/// proxy, that Tor is not running. Other errors keep their own words.
fn unreachable(err: ClientError, proxy: Option<&str>) -> String {
    match proxy {
        Some(proxy) if err.is_unreachable() => {
            format!("cannot reach the server through the proxy {proxy} (is Tor running?): {err}")
        }
        None if err.is_unreachable() => format!("cannot reach the server: {err}"),
        _ => err.to_string(),
    }
}

/// Longest status answer read: `{"new_items": N}` is a few dozen bytes.
const MAX_STATUS_BYTES: u64 = 1024;

/// One `GET /api/v1/status`. Of the server's text only an error's words reach the
/// terminal (through [`expect_status`]); the count is parsed strictly.
fn poll_status(client: &Client, proxy: Option<&str>) -> Poll {
    let response = match client.status() {
        Ok(response) => response,
        Err(err @ ClientError::Request(_)) => return Poll::Failed(unreachable(err, proxy)),
        Err(err) => return Poll::Fatal(err.to_string()),
    };
    let code = response.status;
    let response = match expect_status(response, 200) {
        Ok(response) => response,
        Err(err) if code == 401 => return Poll::Fatal(err.to_string()),
        Err(err) => return Poll::Failed(err.to_string()),
    };
    let mut body = Vec::new();
    let read = std::io::Read::read_to_end(
        &mut std::io::Read::take(response.body, MAX_STATUS_BYTES + 1),
        &mut body,
    );
    match read.ok().and_then(|_| serde_json::from_slice::<Status>(&body).ok()) {
        Some(status) => Poll::NewItems(status.new_items),
        None => Poll::Failed(
            "the server's status answer is not {\"new_items\": N}: is --server the journalist API of an agedrop this recent?"
                .into(),
        ),
    }
}

/// Prints one line per finding and "ok" if none is a problem; fails if one is.
fn check(config: &Path, torrc: Option<&Path>) -> CliResult {
    let mut problems = 0;
    for finding in check::run(config, torrc) {
        let (kind, text) = match finding {
            Finding::Problem(text) => {
                problems += 1;
                ("problem", text)
            }
            Finding::Info(text) => ("info", text),
        };
        // A config error can run over lines (it points at its line): those go
        // indented, so each finding starts exactly one line with its kind.
        println!("{kind}: {}", terminal_safe(&text).replace('\n', "\n    "));
    }
    if problems > 0 {
        return Err(format!("{problems} problem(s); see above").into());
    }
    println!("ok");
    Ok(())
}

fn open(bundles: &[PathBuf], identities: &[PathBuf], output: &Path) -> CliResult {
    let identities = Identities::read(identities)?;
    let mut problems = 0;
    for bundle in bundles {
        let report = offline::open(bundle, &identities, output)?;
        for line in &report.skipped {
            eprintln!("agedrop: skipped: {line}");
        }
        eprintln!(
            "{} item(s) and {} reply(ies) written under {}.",
            report.written,
            report.replies,
            output.display()
        );
        problems += report.skipped.len();
    }
    if problems == 0 {
        Ok(())
    } else {
        let which = if bundles.len() == 1 {
            "this bundle"
        } else {
            "these bundles"
        };
        Err(format!("{problems} problem(s) with {which}; see above").into())
    }
}

fn desk_dir(dir: Option<PathBuf>) -> Result<PathBuf, Box<dyn Error>> {
    dir.or_else(desk::default_dir)
        .ok_or_else(|| "no desk directory given and HOME is not set: pass --desk DIR".into())
}

/// Imports bundles into the desk, each whole or not at all; goes on with the next
/// bundle after a refusal and reports every one.
fn import(
    bundles: &[PathBuf],
    identities: &[PathBuf],
    dir: Option<PathBuf>,
    recipients: &[String],
) -> CliResult {
    let dir = desk_dir(dir)?;
    let newsroom = if recipients.is_empty() {
        crypto::recipients_of_identity_files(identities).ok()
    } else {
        Some(Recipients::parse(recipients)?)
    };
    let identities = Identities::read(identities)?;
    let desk = Desk::open(&dir)?;
    let mut refused = 0;
    for bundle in bundles {
        match desk::import(&desk, bundle, &identities, newsroom.as_ref()) {
            Ok(report) => {
                eprintln!(
                    "{}: {} new, {} already on the desk{}{}.",
                    bundle.display(),
                    report.new_entries,
                    report.known,
                    match report.repaired {
                        0 => String::new(),
                        n => format!(", {n} damaged file(s) written again"),
                    },
                    match report.unreadable_replies {
                        0 => String::new(),
                        n => format!(", {n} reply(ies) these identities cannot read"),
                    },
                );
            }
            Err(err) => {
                refused += 1;
                eprintln!("agedrop: {}: {err}", bundle.display());
            }
        }
    }
    if newsroom.is_none() && desk::newsroom_keys(&desk)?.is_empty() {
        eprintln!(
            "Note: the identity files are passphrase-protected, so the desk cannot learn the \
             newsroom's public keys for replies; import once with --recipient age1…"
        );
    }
    if refused > 0 {
        return Err(format!(
            "{refused} of {} bundle(s) refused; see above",
            bundles.len()
        )
        .into());
    }
    eprintln!(
        "Desk: {}. Read it with: agedrop desk {}",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Serves the desk until Ctrl-C.
fn serve_desk(dir: Option<PathBuf>, port: u16) -> CliResult {
    let dir = desk_dir(dir)?;
    let desk = Desk::open(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = desk::serve(desk, port).await?;
        println!(
            "Desk {} open at {} (this machine only; Ctrl-C stops it)",
            dir.display(),
            server.url
        );
        use std::io::Write as _;
        std::io::stdout().flush()?;
        server.run(server::shutdown_signal()).await;
        Ok::<(), Box<dyn Error>>(())
    })
}

fn reply(
    bundle: &Path,
    identities: &[PathBuf],
    recipients: &[String],
    source: &str,
    message: &Path,
    output: &Path,
) -> CliResult {
    let newsroom = if recipients.is_empty() {
        crypto::recipients_of_identity_files(identities)?
    } else {
        Recipients::parse(recipients)?
    };
    let text = zeroize::Zeroizing::new(
        fs::read(message).map_err(|e| format!("cannot read {}: {e}", message.display()))?,
    );
    offline::reply(bundle, source, &text, &newsroom, output)?;
    eprintln!(
        "Reply for {source} written to {}. Carry it to the online machine and run `agedrop push`.",
        output.display()
    );
    Ok(())
}

fn backup(config_path: &Path, output: &Path) -> CliResult {
    let config = Config::load(config_path)?;
    let summary = backup::backup(&config.data_dir, &config.storage, &config.database, output)?;
    // stderr: stdout may be the backup itself.
    eprintln!(
        "Backed up {} blobs, the database and the instance secret{}.",
        summary.blobs,
        if output == Path::new("-") {
            String::new()
        } else {
            format!(" to {}", output.display())
        }
    );
    if summary.skipped > 0 {
        eprintln!(
            "{} items or replies were deleted on the server during the backup and are not in it.",
            summary.skipped
        );
    }
    eprintln!("It holds the instance secret: keep it encrypted (docs/admin.md, \"Backups\").");
    Ok(())
}

fn restore(archive: &Path, data_dir: &Path) -> CliResult {
    let summary = backup::restore(archive, data_dir)?;
    println!(
        "Restored {} blobs, the database and the instance secret into {}.",
        summary.blobs,
        data_dir.display()
    );
    println!(
        "Point data_dir in agedrop.toml at it; if you ran this as another user than the service's, `chown -R agedrop: {}` before `agedrop serve`.",
        data_dir.display()
    );
    Ok(())
}

/// `init --config`: the data directory of an existing config, and the shared state.
/// Nothing is left behind if it fails: a data directory it made is removed again.
fn init_from_config(
    config_path: &Path,
    instance_secret: Option<&Path>,
    owner: Option<&str>,
) -> CliResult {
    let config = Config::load(config_path)?;
    let as_root = rustix::process::geteuid().is_root();
    let owner = match owner {
        Some(_) if !as_root => return Err("--owner needs root: run init with sudo".into()),
        Some(name) => Some((name, system_user(name)?)),
        None => None,
    };
    let data_dir = &config.data_dir;
    if data_dir.exists() {
        return Err(format!(
            "{} exists already: `init --config` makes a new data directory (a running \
             drop's is checked by `agedrop check`, and joined by starting `serve`)",
            data_dir.display()
        )
        .into());
    }
    let secret = match instance_secret {
        Some(path) => {
            let bytes =
                zeroize::Zeroizing::new(fs::read(path).map_err(|e| {
                    format!("cannot read the instance secret {}: {e}", path.display())
                })?);
            if bytes.len() != 32 {
                return Err(format!(
                    "{} is not an instance secret (it must be exactly 32 bytes, as \
                     data_dir/instance-secret is)",
                    path.display()
                )
                .into());
            }
            Some(bytes)
        }
        None => None,
    };
    if let Some(parent) = data_dir.parent() {
        fs::create_dir_all(parent)?;
    }
    // Not recursive: a directory that appeared since the check above is refused here,
    // and so never removed below as if this init had made it.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            )
        })?;
    let made = (|| -> CliResult {
        if let Some(secret) = &secret {
            write_private(&data_dir.join("instance-secret"), &secret[..])?;
        }
        Store::create(data_dir, &config.storage, &config.database)
            .map_err(|e| format!("config key `{}`: {e}", e.config_key()))?;
        if let Some((name, (uid, gid))) = owner {
            give_to(data_dir, uid, gid)
                .map_err(|e| format!("cannot give {} to {name}: {e}", data_dir.display()))?;
        }
        Ok(())
    })();
    if let Err(err) = made {
        let _ = fs::remove_dir_all(data_dir);
        return Err(err);
    }
    let shared = match (&config.database, &config.storage) {
        (Database::Sqlite, Storage::Local) => "",
        _ => " The database and the bucket it names are this drop's and answer for its instance secret.",
    };
    println!(
        "Made the data directory {}.{shared} Next: `agedrop serve --config {}`.",
        data_dir.display(),
        config_path.display()
    );
    Ok(())
}

fn init(
    recipients: &[String],
    dir: &Path,
    data_dir: Option<&Path>,
    owner: Option<&str>,
) -> CliResult {
    let config_path = dir.join("agedrop.toml");
    if config_path.exists() {
        return Err(format!(
            "{} exists already; not overwriting it",
            config_path.display()
        )
        .into());
    }
    let as_root = rustix::process::geteuid().is_root();
    // Checked before anything is written.
    let owner = match owner {
        Some(_) if !as_root => return Err("--owner needs root: run init with sudo".into()),
        Some(name) => Some((name, system_user(name)?)),
        None => None,
    };
    let data_dir = data_dir.map_or_else(|| PathBuf::from("data"), Path::to_owned);
    let text = Config::render(
        &data_dir,
        &Listen::parse("127.0.0.1:8080")?,
        &Listen::parse("127.0.0.1:8081")?,
        recipients,
        &Limits::default(),
    );
    // Validate exactly what we are about to write.
    let config = Config::parse(&text, dir)?;
    fs::create_dir_all(dir)?;
    Store::create(&config.data_dir, &config.storage, &config.database)
        .map_err(|e| format!("config key `{}`: {e}", e.config_key()))?;
    write_private(&config_path, text.as_bytes())?;
    if let Some((name, (uid, gid))) = owner {
        give_to(&config.data_dir, uid, gid)
            .map_err(|e| format!("cannot give {} to {name}: {e}", config.data_dir.display()))?;
        // The service reads its config but cannot change it.
        rustix::fs::chown(&config_path, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
            |e| {
                format!(
                    "cannot give {} to {name}'s group: {e}",
                    config_path.display()
                )
            },
        )?;
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o640))?;
    }
    println!(
        "Wrote {} and the data directory {}.",
        config_path.display(),
        config.data_dir.display()
    );
    match owner {
        Some((name, _)) => println!(
            "The data directory belongs to {name}; the config is root's, readable by {name}'s \
             group.\nNext: set the listen addresses (/usr/share/doc/agedrop/examples/agedrop.toml explains them), add \
             journalists with `runuser -u {name} -- agedrop journalist add NAME --config {}`, \
             then start the service: `systemctl enable --now agedrop`.",
            config_path.display()
        ),
        None if as_root => println!(
            "You ran init as root, so these files are root's: a service user could not use \
             them. For a real deployment, remove them and run init again with --owner agedrop \
             (docs/admin.md, \"Create the config and data directory\")."
        ),
        None => println!(
            "Next: add journalists with `agedrop journalist add NAME --config {0}`, then \
             `agedrop serve --config {0}`.",
            config_path.display()
        ),
    }
    Ok(())
}

/// The uid and gid of the system user `name`, from /etc/passwd.
fn system_user(name: &str) -> Result<(u32, u32), Box<dyn Error>> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let user = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            (user == name).then_some((uid, gid))
        })
        .next()
        .ok_or_else(|| {
            format!(
                "no user {name:?}: create it first, e.g. `useradd --system --home-dir \
                 /var/lib/agedrop --shell /usr/sbin/nologin {name}`"
            )
            .into()
        })
}

/// Gives `dir` and everything in it (never following links) to `uid`:`gid`.
fn give_to(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        rustix::fs::chownat(
            rustix::fs::CWD,
            &path,
            Some(uid),
            Some(gid),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if fs::symlink_metadata(&path)?.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

fn retention(config_path: &Path, as_of: Option<&str>) -> CliResult {
    let config = Config::load(config_path)?;
    let policy = config.source.retention;
    if policy.is_off() {
        return Err(format!(
            "{} sets no [retention] rule: nothing is ever deleted by the server itself",
            config_path.display()
        )
        .into());
    }
    let today = match as_of {
        Some(day) => crate::time::parse_day(day)
            .ok_or_else(|| format!("--as-of {day:?} is not a day (YYYY-MM-DD)"))?,
        None => crate::time::start_of_day(std::time::SystemTime::now()),
    };
    let store = Store::open_shared(&config.data_dir, &config.storage, &config.database)
        .map_err(|e| format!("config key `{}`: {e}", e.config_key()))?;
    let swept = store.sweep(&policy, today)?;
    println!(
        "Deleted {} item(s) pulled by every account of their desk, {} old item(s), {} inactive source(s).",
        swept.pulled_items, swept.old_items, swept.inactive_sources
    );
    Ok(())
}

fn serve(config_path: &Path, allow_root: bool) -> CliResult {
    let config = Config::load(config_path)?;
    refuse_root(&config.data_dir, allow_root)?;
    run_server(config)
}

/// `serve` as root makes root-owned files in the data directory (the WAL, temp files,
/// blobs) that the service user cannot read later, so exports fail. Refused unless
/// asked for, and never into a directory that belongs to another user.
fn refuse_root(data_dir: &Path, allow_root: bool) -> CliResult {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let owner = fs::metadata(data_dir).map(|m| m.uid()).ok();
    match owner {
        Some(uid) if uid != 0 => Err(format!(
            "refusing to serve as root: {} belongs to uid {uid}, and files made as root there would be unreadable to it. Run agedrop as that user (the systemd unit does: User=agedrop), e.g. `sudo -u agedrop agedrop serve`",
            data_dir.display()
        )
        .into()),
        _ if !allow_root => Err(format!(
            "refusing to serve as root: files made in {} would belong to root. Run agedrop as its own user (the systemd unit does: User=agedrop), or pass --allow-root if root is meant to own the data",
            data_dir.display()
        )
        .into()),
        _ => Ok(()),
    }
}

fn run_server(config: Config) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server::run(config, server::shutdown_signal()))?;
    Ok(())
}

const DEMO_WARNING: &str = "DEMO ONLY — NEVER USE FOR REAL SOURCES";

fn demo(dir: &Path, port: u16) -> CliResult {
    let identity_path = dir.join("newsroom-identity.txt");
    let token_path = dir.join("journalist-token.txt");
    let config_path = dir.join("agedrop.toml");
    if config_path.exists() {
        println!("Reusing the demo in {}.", dir.display());
        let saved = Config::load(&config_path)?;
        if let Listen::Tcp(addr) = &saved.source_listen {
            if addr.port() != port {
                println!(
                    "Note: this demo was made with port {}; --port {port} does not change it \
                     (remove {} to start a new demo on another port).",
                    addr.port(),
                    dir.display()
                );
            }
        }
    } else {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let identity = NewsroomIdentity::generate();
        let text = identity.to_identity_file(&[
            DEMO_WARNING,
            "A throwaway identity made by `agedrop demo`; anyone with this file reads everything.",
        ]);
        write_private(&identity_path, text.as_bytes())?;
        let source = Listen::parse(&format!("127.0.0.1:{port}"))?;
        let journalist_port = if port == 0 {
            0
        } else {
            port.checked_add(1).ok_or("--port must be below 65535")?
        };
        let journalist = Listen::parse(&format!("127.0.0.1:{journalist_port}"))?;
        let limits = Limits {
            // A demo runs on laptops with little free disk; the floor is for servers.
            min_free_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        let config_text = Config::render(
            Path::new("data"),
            &source,
            &journalist,
            &[identity.recipient()],
            &limits,
        );
        let config = Config::parse(&config_text, dir)?;
        let store = Store::create(&config.data_dir, &config.storage, &config.database)?;
        let token = Token::generate();
        store.add_journalist("demo", &token.id, &token.secret_hash(), None)?;
        write_private(&token_path, format!("{}\n", token.expose()).as_bytes())?;
        write_private(&config_path, config_text.as_bytes())?;
    }
    let config = Config::load(&config_path)?;
    println!("agedrop demo ({DEMO_WARNING})");
    println!("  newsroom identity: {}", identity_path.display());
    println!("  journalist token:  {}", token_path.display());
    println!("  config:            {}", config_path.display());
    println!(
        "Open the source site (its address is printed below) in a browser; items appear under {}/blobs/.",
        config.data_dir.display()
    );
    println!(
        "Decrypt one with: age -d -i {} FILE.age",
        identity_path.display()
    );
    run_server(config)
}
