//! The `agedrop` command line (DESIGN.md §6). Each command is a short function over the
//! library; errors are reported once, on stderr, with a non-zero exit.

use std::error::Error;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Limits, Listen};
use crate::crypto::NewsroomIdentity;
use crate::logging::{self, LogFormat};
use crate::store::Store;
use crate::web::journalist::token_hash;
use crate::{random, server};

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
    },
    /// Create a data directory and agedrop.toml for a real deployment.
    Init {
        /// A newsroom age1… recipient; repeat for several.
        #[arg(long = "recipient", required = true)]
        recipients: Vec<String>,
        /// Where agedrop.toml goes.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The data directory (default: DIR/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Serve the source site and the journalist API.
    Serve {
        /// The config file.
        #[arg(long, default_value = "agedrop.toml")]
        config: PathBuf,
    },
}

/// Parses arguments, runs the command, reports any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Demo { dir, port } => demo(&dir, port),
        Command::Keygen { output } => keygen(output.as_deref()),
        Command::Init {
            recipients,
            dir,
            data_dir,
        } => init(&recipients, &dir, data_dir.as_deref()),
        Command::Serve { config } => serve(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agedrop: error: {err}");
            ExitCode::FAILURE
        }
    }
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

fn keygen(output: Option<&Path>) -> CliResult {
    let identity = NewsroomIdentity::generate();
    let text =
        identity.to_identity_file(&["agedrop newsroom identity: keep it on the offline machine"]);
    match output {
        Some(path) => {
            write_private(path, text.as_bytes())?;
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

fn init(recipients: &[String], dir: &Path, data_dir: Option<&Path>) -> CliResult {
    let config_path = dir.join("agedrop.toml");
    if config_path.exists() {
        return Err(format!(
            "{} exists already; not overwriting it",
            config_path.display()
        )
        .into());
    }
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
    Store::create(&config.data_dir).map_err(|e| format!("config key `data_dir`: {e}"))?;
    write_private(&config_path, text.as_bytes())?;
    println!(
        "Wrote {} and the data directory {}.",
        config_path.display(),
        config.data_dir.display()
    );
    println!(
        "Next: add journalists, then `agedrop serve --config {}`.",
        config_path.display()
    );
    Ok(())
}

fn serve(config_path: &Path) -> CliResult {
    let config = Config::load(config_path)?;
    run_server(config)
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
        let store = Store::create(&config.data_dir)?;
        let token = random::hex_id(32);
        store.add_journalist("demo", &token_hash(&token))?;
        write_private(&token_path, format!("{token}\n").as_bytes())?;
        write_private(&config_path, config_text.as_bytes())?;
    }
    let config = Config::load(&config_path)?;
    println!("agedrop demo ({DEMO_WARNING})");
    println!("  newsroom identity: {}", identity_path.display());
    println!("  journalist token:  {}", token_path.display());
    println!("  config:            {}", config_path.display());
    println!(
        "Open the source site in a browser; items appear under {}/blobs/.",
        config.data_dir.display()
    );
    println!(
        "Decrypt one with: age -d -i {} FILE.age",
        identity_path.display()
    );
    run_server(config)
}
