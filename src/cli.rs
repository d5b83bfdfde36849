//! The command line: `kpath check`, `kpath rules`, `kpath explain`. Exit codes: 0 no failing
//! findings, 1 failing findings, 2 usage or configuration error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Config};
use crate::engine;
use crate::finding::Severity;
use crate::report::{self, Format};
use crate::rules::{self, RULES};

#[derive(Parser, Debug)]
#[command(name = "kpath", version, about = "Golden-path review for Kubernetes manifests, Helm charts and Dockerfiles")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check files and directories against the golden-path rules.
    Check(CheckArgs),
    /// List every rule: id, default severity, guideline section and summary.
    Rules {
        #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
        format: RulesFormat,
    },
    /// Explain a rule: why it matters, how to fix it, with a bad and a good example (Markdown).
    Explain {
        /// The rule id, e.g. `hpa-replicas-conflict`.
        rule: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Files or directories (recursive). Defaults to the current directory.
    pub paths: Vec<PathBuf>,
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Configuration file. Default: `.kpath.yml` in the checked directory or its parents up to the
    /// repository root, then the current directory.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Lowest severity that makes kpath exit with 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Kubernetes version to check API versions against (overrides the config), e.g. `1.30`.
    #[arg(long)]
    pub kubernetes_version: Option<String>,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Also print suppressed findings in text output (JSON and SARIF always include them).
    #[arg(long)]
    pub show_suppressed: bool,
    /// The helm binary to render charts with (default: $KPATH_HELM, then `helm` on PATH).
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
    /// Where rendered charts are cached (default: `helm.cacheDir`, else ~/.cache/kpath/renders).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the on-disk render cache.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Notice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(args),
        Command::Rules { format } => {
            print(&rules_listing(format));
            ExitCode::SUCCESS
        }
        Command::Explain { rule } => match rules::find(&rule) {
            Some(r) => {
                print(&r.explanation_markdown());
                ExitCode::SUCCESS
            }
            None => {
                let hint = rules::closest(&rule).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
                eprintln!("error: unknown rule `{rule}`{hint} (`kpath rules` lists them all)");
                ExitCode::from(2)
            }
        },
    }
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`kpath rules | head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Finds `.kpath.yml` for the checked paths: the first path's directory and its parents up to the
/// repository root (a directory containing `.git`), then the current directory.
pub fn find_config(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first().map(PathBuf::as_path).unwrap_or(Path::new("."));
    let start =
        if first.is_dir() { first.to_path_buf() } else { first.parent().map(Path::to_path_buf).unwrap_or_default() };
    let start = std::fs::canonicalize(if start.as_os_str().is_empty() { Path::new(".") } else { &start }).ok()?;
    for dir in start.ancestors() {
        for name in [config::FILE_NAME, ".kpath.yaml"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    let cwd = Path::new(config::FILE_NAME);
    cwd.is_file().then(|| cwd.to_path_buf())
}

fn check(args: CheckArgs) -> ExitCode {
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let config_path = args.config.clone().or_else(|| find_config(&paths));
    let mut config = match &config_path {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(base) = config_path.as_deref().and_then(Path::parent) {
        config.base_dir = Some(base.to_path_buf());
    }
    if let Some(v) = &args.kubernetes_version {
        match Config::parse(&format!("kubernetesVersion: \"{v}\"\n"), "--kubernetes-version") {
            Ok(c) => config.kubernetes_version = c.kubernetes_version,
            Err(e) => {
                eprintln!("error: {}", e.message);
                return ExitCode::from(2);
            }
        }
    }
    for path in &paths {
        if !path.exists() {
            eprintln!("error: {}: no such file or directory", path.display());
            return ExitCode::from(2);
        }
    }
    if args.helm.is_some() {
        config.helm.binary = args.helm.clone();
    }
    if let Some(dir) = &args.cache_dir {
        config.helm.cache_dir = Some(dir.clone());
    } else if let (Some(dir), Some(base)) = (&config.helm.cache_dir, &config.base_dir)
        && dir.is_relative()
        && config.source.is_some()
    {
        // A relative `helm.cacheDir` in .kpath.yml is relative to that file.
        config.helm.cache_dir = Some(base.join(dir));
    }
    if args.no_cache {
        config.helm.cache_dir = None;
    }
    let report = engine::check_paths(&paths, &config);
    if let Some(reason) = &report.helm_missing {
        eprintln!("error: this path holds Helm charts, but {reason}");
        return ExitCode::from(2);
    }
    let colour = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = match args.format {
        Format::Text => report::text::render(&report, colour, args.show_suppressed),
        Format::Json => report::json::render(&report),
        Format::Sarif => report::sarif::render(&report),
        Format::Github => report::github::render(&report),
    };
    print(&text);
    let threshold = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Notice => Severity::Notice,
    };
    if report::fails(&report.findings, threshold) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn rules_listing(format: RulesFormat) -> String {
    match format {
        RulesFormat::Json => {
            let list: Vec<serde_json::Value> = RULES
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "severity": r.severity, "section": r.section, "summary": r.summary,
                        "options": r.options.iter().map(|o| serde_json::json!({"name": o.name, "default": o.default, "doc": o.doc})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
        }
        RulesFormat::Markdown => {
            let mut md = String::from("| id | severity | section | summary |\n|---|---|---|---|\n");
            for r in RULES {
                md.push_str(&format!("| `{}` | {} | {} | {} |\n", r.id, r.severity, r.section, r.summary));
            }
            md
        }
        RulesFormat::Text => {
            let width = RULES.iter().map(|r| r.id.len()).max().unwrap_or(0);
            let mut out = String::new();
            for r in RULES {
                out.push_str(&format!("{:width$}  {:7}  {}  ({})\n", r.id, r.severity.as_str(), r.summary, r.section));
            }
            out
        }
    }
}
