//! The command line: `kpath check`, `kpath review`, `kpath rules`, `kpath explain`, `kpath serve`,
//! `kpath setup`. Exit codes: 0 no failing findings, 1 failing findings, 2 usage or configuration error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Config};
use crate::engine;
use crate::finding::Severity;
use crate::report::{self, Format};
use crate::rules::{self, RULES};

/// Shown at the end of `--help`.
const EXIT_CODES: &str = "Exit codes:\n  0  nothing at or above the --fail-on severity (the review passes)\n  1  findings at or above \
the --fail-on severity (the review fails)\n  2  usage, configuration or repository error (nothing was judged)";

#[derive(Parser, Debug)]
#[command(
    name = "kpath",
    version,
    about = "Golden-path review for Kubernetes manifests, Helm charts, Kustomize, Argo CD and Flux, and Dockerfiles",
    after_help = EXIT_CODES
)]
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
        /// How to print the list.
        #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
        format: RulesFormat,
    },
    /// Review a change: check base and head, diff the rendered objects, and print what a pull request
    /// review would post (only findings the change introduces can fail it).
    Review(ReviewArgs),
    /// Explain a rule: why it matters, how to fix it, with a bad and a good example (Markdown).
    Explain {
        /// The rule id, e.g. `hpa-replicas-conflict`.
        rule: String,
    },
    /// Run the GitHub App: receive webhooks, review pull requests, post check runs and comments.
    Serve(Box<crate::app::serve::ServeArgs>),
    /// Register kpath as a GitHub App (GitHub's manifest flow, from a page on this machine) and write its
    /// private key and webhook secret to files for a Kubernetes Secret.
    Setup(Box<crate::app::setup::SetupArgs>),
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct CheckArgs {
    /// Files or directories (recursive). Defaults to the current directory.
    pub paths: Vec<PathBuf>,
    /// How to print the findings.
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
    /// Colour the text output: `auto` when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Also print suppressed findings in text output (JSON and SARIF always include them).
    #[arg(long)]
    pub show_suppressed: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// The tools and downloads a check or a review may use, and the render cache: the same flags on both.
#[derive(clap::Args, Debug)]
pub struct ToolArgs {
    /// The helm binary to render charts with (default: $KPATH_HELM, then `helm` on PATH).
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
    /// The kubectl whose built-in kustomize renders Kustomizations (default: $KPATH_KUBECTL, then `kubectl` on
    /// PATH).
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// Chart repositories (Helm HTTP or `oci://`) kpath may download charts from, as URL prefixes; repeat or
    /// separate with commas. A repository's `.kpath.yml` cannot allow any.
    #[arg(
        long = "allow-chart-source",
        value_name = "PREFIX",
        env = "KPATH_ALLOW_CHART_SOURCES",
        value_delimiter = ','
    )]
    pub allow_chart_source: Vec<String>,
    /// Where renders are cached (default: `helm.cacheDir`, else ~/.cache/kpath/renders).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the on-disk render cache.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["repo", "base_dir"])), after_help = EXIT_CODES)]
pub struct ReviewArgs {
    /// A git repository (work tree or bare); its work tree is never touched.
    #[arg(long, value_name = "DIR", requires = "base")]
    pub repo: Option<PathBuf>,
    /// The pull request's base revision (branch, tag or SHA). The diff starts at the merge-base of base and head.
    #[arg(long, value_name = "REV", requires = "repo")]
    pub base: Option<String>,
    /// The pull request's head revision (default: HEAD).
    #[arg(long, value_name = "REV", requires = "repo")]
    pub head: Option<String>,
    /// Compare two plain directories instead of git revisions: the base side.
    #[arg(long, value_name = "DIR", requires = "head_dir", conflicts_with = "repo")]
    pub base_dir: Option<PathBuf>,
    /// The head side of a `--base-dir` comparison.
    #[arg(long, value_name = "DIR", requires = "base_dir")]
    pub head_dir: Option<PathBuf>,
    /// What to print: the summary comment, the whole plan as text or JSON, or everything the App would post.
    #[arg(long, short, value_enum, default_value_t = ReviewFormat::Markdown)]
    pub format: ReviewFormat,
    /// Lowest severity of a new finding that fails the review (default: `review.failOn`, else error).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Whose `.kpath.yml` judges both sides. `base` (the default, and what the GitHub App does): the one
    /// already merged, so a pull request cannot weaken the gate that judges it. `head`: the pull
    /// request's own, to try a configuration change locally.
    #[arg(long, value_enum, default_value_t = ConfigFromArg::Base)]
    pub config_from: ConfigFromArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFromArg {
    Base,
    Head,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    /// The summary exactly as the pull request would show it.
    Markdown,
    /// The whole review plan: findings with status, inline comments, summary, conclusion.
    Json,
    /// A terminal overview.
    Text,
    /// Everything the GitHub App would post: the check run, each inline comment on its line, the summary.
    Github,
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
        Command::Check(args) => {
            stay_clean();
            check(args)
        }
        Command::Review(args) => {
            stay_clean();
            review(args)
        }
        Command::Serve(args) => serve(&args),
        Command::Setup(args) => crate::app::setup::command(&args),
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

/// For the commands that render with helm: a signal kills helm and removes kpath's temporary
/// directories before kpath exits, and directories left by a kpath that was killed are removed.
fn stay_clean() {
    crate::cleanup::exit_on_signals();
    crate::cleanup::sweep_stale();
}

fn serve(args: &crate::app::serve::ServeArgs) -> ExitCode {
    use crate::app::serve::{self, Settings};
    // JSON or text by `--log-format`/`KPATH_LOG_FORMAT` and the terminal, filtered by `KPATH_LOG`, redacted.
    if let Err(error) = crate::app::logging::init(args.log_format.as_deref(), &|name| std::env::var(name).ok()) {
        eprintln!("error: kpath serve: {error}");
        return ExitCode::from(2);
    }
    let settings = match Settings::resolve(args, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: kpath serve: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: kpath serve: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(serve::run(settings));
    // A review handed back at the shutdown deadline may still be rendering on a blocking thread: exit
    // without waiting for it (its helm processes die with kpath; its temporary directory is swept at the
    // next start), so the pod stops within its grace period.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: kpath serve: {error}");
            ExitCode::from(2)
        }
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
    if let Some(path) = &args.config
        && !path.is_file()
    {
        eprintln!("error: --config {}: not found", path.display());
        return ExitCode::from(2);
    }
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
    if args.tools.helm.is_some() {
        config.helm.binary = args.tools.helm.clone();
    }
    if args.tools.kubectl.is_some() {
        config.helm.kubectl = args.tools.kubectl.clone();
    }
    // Argo CD and Flux sources are "this repository" when they name its `origin` (or a `gitops.repoURLs` URL).
    if let Some(url) = paths.first().and_then(|p| crate::gitops::repo::origin_of(p)) {
        config.gitops.repositories.extend(crate::gitops::repo::normalise(&url));
    }
    config.gitops.allowed_chart_sources = args.tools.allow_chart_source.clone();
    if let Some(dir) = &args.tools.cache_dir {
        config.helm.cache_dir = Some(dir.clone());
    } else if let (Some(dir), Some(base)) = (&config.helm.cache_dir, &config.base_dir)
        && dir.is_relative()
        && config.source.is_some()
    {
        // A relative `helm.cacheDir` in .kpath.yml is relative to that file.
        config.helm.cache_dir = Some(base.join(dir));
    }
    if args.tools.no_cache {
        config.helm.cache_dir = None;
    }
    match operator_ceilings() {
        Ok(ceilings) => config.clamp(&ceilings),
        Err(code) => return code,
    }
    for note in &config.notes {
        eprintln!("note: {note}");
    }
    let report = engine::check_paths(&paths, &config, &crate::renderers::builtin(&config));
    if let Some(reason) = &report.tool_missing {
        // Not a usage error: everything else was checked, and each unit not rendered has a `render-skipped` notice.
        eprintln!("note: some of this path was not rendered (see the render-skipped notices): {reason}");
    }
    let colour = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`kpath check … | head`) is not an error worth a panic.
        let _ = report::write(&report, args.format, colour, args.show_suppressed, &mut stdout);
        let _ = stdout.flush();
    }
    let threshold = severity_of(args.fail_on);
    if report::fails(&report.findings, threshold) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// The operator's bounds on what `.kpath.yml` may ask for, from `KPATH_MAX_RENDER_*`.
fn operator_ceilings() -> Result<config::Ceilings, ExitCode> {
    config::Ceilings::resolve([None, None, None, None], &|name| std::env::var(name).ok()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn severity_of(fail_on: FailOn) -> Severity {
    match fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Notice => Severity::Notice,
    }
}

fn review(args: ReviewArgs) -> ExitCode {
    use crate::review::plan::{self, Conclusion};
    use crate::review::run::{self, Options, Source};
    let source = match (&args.repo, &args.base, &args.head, &args.base_dir, &args.head_dir) {
        (Some(repo), Some(base), head, _, _) => Source::Git {
            repo: repo.clone(),
            base: base.clone(),
            head: head.clone().unwrap_or_else(|| "HEAD".to_string()),
        },
        (_, _, _, Some(base), Some(head)) => Source::Dirs { base: base.clone(), head: head.clone() },
        _ => {
            eprintln!("error: give --repo with --base and --head, or --base-dir with --head-dir");
            return ExitCode::from(2);
        }
    };
    let ceilings = match operator_ceilings() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let options = Options {
        fail_on: args.fail_on.map(severity_of),
        helm: args.tools.helm.clone(),
        kubectl: args.tools.kubectl.clone(),
        cache_dir: args.tools.cache_dir.clone(),
        no_cache: args.tools.no_cache,
        repositories: args
            .repo
            .as_deref()
            .or(args.base_dir.as_deref())
            .and_then(crate::gitops::repo::origin_of)
            .and_then(|url| crate::gitops::repo::normalise(&url))
            .into_iter()
            .collect(),
        allowed_chart_sources: args.tools.allow_chart_source.clone(),
        web: None,
        config_from: match args.config_from {
            ConfigFromArg::Base => run::ConfigFrom::Base,
            ConfigFromArg::Head => run::ConfigFrom::Head,
        },
        ceilings,
    };
    let plan = match run::review(&source, &options) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.format {
        ReviewFormat::Markdown => plan::render_markdown(&plan),
        ReviewFormat::Text => plan::render_text(&plan),
        ReviewFormat::Github => crate::app::worker::render_posted(&plan),
        ReviewFormat::Json => serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n",
    };
    print(&plan.redact(&text));
    if matches!(plan.conclusion, Conclusion::Failure) { ExitCode::from(1) } else { ExitCode::SUCCESS }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_option_of_every_command_has_help_text() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                if arg.get_id() != "help" && arg.get_id() != "version" && arg.get_help().is_none() {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let mut cli = Cli::command();
        for name in ["check", "review"] {
            let help = cli.find_subcommand_mut(name).map(|c| c.render_long_help().to_string()).unwrap_or_default();
            assert!(help.contains("Exit codes:") && help.contains("  2  "), "{name}: {help}");
        }
    }
}
