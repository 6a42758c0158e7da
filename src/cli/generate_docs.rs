//! `caretaker generate-docs --out DIR`: the manual pages and the bash, zsh and
//! fish completions, generated from the same clap definitions that parse the
//! command line, so what the package installs cannot drift from the flags.
//!
//! Hidden from `--help`: `scripts/package.sh` runs it before building the
//! `.deb`. Hidden subcommands (this one, `collect`) get no page and no
//! completion.
//!
//! Layout of DIR (the names the package installs):
//! - `man/caretaker.1`, `man/caretaker-<subcommand>.1`
//! - `completions/bash/caretaker`, `completions/zsh/_caretaker`,
//!   `completions/fish/caretaker.fish`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `caretaker generate-docs`.
#[derive(Debug, clap::Args)]
pub struct GenerateDocsArgs {
    /// Folder to write `man/` and `completions/` into (created when missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes every page and completion, printing each path written.
pub fn run(args: &GenerateDocsArgs) -> anyhow::Result<ExitCode> {
    for path in generate(&args.out)? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the documents under `out` and returns their paths.
pub fn generate(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (relative, contents) in documents()? {
        let path = out.join(relative);
        write_replacing(&path, &contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Every document as (path relative to the output folder, contents).
fn documents() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let root = crate::cli::Cli::command().disable_help_subcommand(true);
    let mut command = root.clone();
    // build() gives subcommands their display names (`caretaker-run`), which
    // name their pages.
    command.build();
    let mut documents = Vec::new();
    man_pages(&command, &mut documents)?;
    // From the unbuilt root: a built one already holds the generated --help
    // and --version, which a new command would add a second time.
    let mut visible = without_hidden_subcommands(&root).disable_help_subcommand(true);
    for (shell, name) in [
        (Shell::Bash, "bash/caretaker"),
        (Shell::Zsh, "zsh/_caretaker"),
        (Shell::Fish, "fish/caretaker.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut visible, "caretaker", &mut script);
        documents.push((Path::new("completions").join(name), script));
    }
    Ok(documents)
}

/// `command` without its hidden subcommands, which clap_complete would
/// otherwise offer (clap_mangen leaves them out by itself).
fn without_hidden_subcommands(command: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new("caretaker").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    for arg in command.get_arguments() {
        visible = visible.arg(arg.clone());
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        visible = visible.subcommand(sub.clone());
    }
    visible
}

/// The page of `command` and, recursively, of each visible subcommand.
fn man_pages(
    command: &clap::Command,
    documents: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, documents)?;
    }
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering the page of {}", command.get_name()))?;
    documents.push((Path::new("man").join(man.get_filename()), page));
    Ok(())
}

/// Writes `contents` to a temporary name beside `path`, syncs it and renames
/// it over `path`, so a reader never sees half a page.
fn write_replacing(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}
