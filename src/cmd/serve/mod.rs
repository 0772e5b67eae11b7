//! `missive serve`: the reviewers' web app, on 127.0.0.1 only.
//!
//! Server-rendered HTML with plain forms (no JavaScript): an index of every letter kind and
//! variant with its approval state; a page per letter type with the rendered pages as
//! images for any sample account, the template source, the variables it uses with their
//! values, a diff against the last approved version, and an approve form. Templates,
//! layout and sample accounts are read from disk on every request, so editing a file and
//! reloading shows the change. An approval names the exact version the reviewer saw: if the
//! files changed in between, it is refused. POSTs must carry the per-process token of the
//! form and, when the browser sends one, an Origin (or Referer) of this server.

mod guard;
mod html;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use clap::Args;
use missive::compose::{Composer, template_name_in};
use missive::config::{Config, hex};
use missive::language::Language;
use missive::ledger::{AnyLedger, NewApproval};
use missive::letter::LetterKind;
use missive::render::Renderer;
use missive::review::{ApprovalState, LetterType, Samples, sample_as_of};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use guard::{new_token, no_framing, only_local_hosts, same_origin};

use super::preview::sample_job;
use super::{parse_date, project_dir};

/// Page images are rendered at this many pixels per point (108 dpi).
const PIXEL_PER_PT: f32 = 1.5;

/// Rendered letters kept in memory (a page request after the letter page is a hit).
const CACHE_ENTRIES: usize = 32;

/// Options of `missive serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Ledger file where approvals are recorded (the one `run` uses).
    /// A SQLite file or `postgres://user@host:port/db` (default: `[ledger] url`, else
    /// `out/missive.db`).
    #[arg(long, value_name = "FILE|URL")]
    pub(crate) ledger: Option<PathBuf>,
    /// Sample accounts to show letters for (default: `samples/accounts`).
    #[arg(long, value_name = "PATH")]
    pub(crate) accounts: Option<PathBuf>,
    /// The date the samples are planned at (default: 2026-12-01, the samples' date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) as_of: Option<NaiveDate>,
    /// Templates directory (default: ./templates, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
    /// Fonts directory (default: ./fonts, else the one missive was built with).
    #[arg(long, value_name = "DIR")]
    pub(crate) fonts: Option<PathBuf>,
}

/// What every request shares.
pub(crate) struct AppState {
    config: Config,
    templates: PathBuf,
    fonts: PathBuf,
    accounts: PathBuf,
    as_of: NaiveDate,
    ledger: Mutex<AnyLedger>,
    /// How the ledger is named on the pages (its file, or `postgres://…`).
    ledger_name: String,
    /// The hidden form field every POST must echo.
    token: String,
    /// The origins this server answers as (`http://127.0.0.1:PORT`, `http://localhost:PORT`).
    origins: Vec<String>,
    /// The renderer, rebuilt when the layout files change: (layout hash, renderer).
    renderer: Mutex<Option<(String, Renderer)>>,
    /// Composed source hash → PNG pages.
    pages: Mutex<HashMap<String, Arc<Vec<Vec<u8>>>>>,
}

/// An error page: a status and what went wrong (shown escaped).
#[derive(Debug)]
pub(crate) struct AppError {
    status: StatusCode,
    error: anyhow::Error,
}

impl AppError {
    fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            error: anyhow!(message.into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = format!("{:#}", self.error);
        match html::error_page(self.status, &message) {
            Ok(body) => (self.status, Html(body)).into_response(),
            // The error page itself failed: the message as plain text, never lost.
            Err(err) => (self.status, format!("{message}\n({err:#})")).into_response(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(err: E) -> AppError {
        AppError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: err.into(),
        }
    }
}

/// Starts the server and serves until killed.
pub(crate) fn serve(config: &Config, args: ServeArgs) -> Result<ExitCode> {
    let default = std::path::Path::new("out/missive.db");
    let (location, ledger_name) =
        super::ledger_location(args.ledger.as_deref(), config, default, true)?;
    let ledger = missive::ledger::open(&location)?;
    let templates = project_dir(args.templates, "templates");
    // Fail at start, not at the first request, when the templates do not load.
    Composer::load(&templates, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("failed to listen on 127.0.0.1:{}", args.port))?;
        let port = listener.local_addr()?.port();
        let state = AppState::new(
            config.clone(),
            Paths {
                templates,
                fonts: project_dir(args.fonts, "fonts"),
                accounts: args
                    .accounts
                    .unwrap_or_else(|| project_dir(None, "samples/accounts")),
            },
            args.as_of.unwrap_or_else(sample_as_of),
            (ledger, ledger_name.display().to_string()),
            port,
        )?;
        eprintln!(
            "missive serve: listening on http://127.0.0.1:{port}/ (ledger `{}`)",
            ledger_name.display()
        );
        axum::serve(listener, app(Arc::new(state)))
            .await
            .context("the server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The routes.
pub(crate) fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/{kind}", get(letter_page))
        .route("/{kind}/{variant}", get(letter_page_variant))
        .route("/{kind}/page/{file}", get(page_image))
        .route("/{kind}/{variant}/page/{file}", get(page_image_variant))
        .route("/{kind}/approve", post(approve))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            only_local_hosts,
        ))
        .layer(middleware::map_response(no_framing))
        .with_state(state)
}

/// Runs blocking work (file reads, SQLite, Typst) off the async threads.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&AppState) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|err| AppError::from(anyhow!("request failed: {err}")))?
}

/// Where the app reads templates, fonts and sample accounts.
pub(crate) struct Paths {
    pub(crate) templates: PathBuf,
    pub(crate) fonts: PathBuf,
    pub(crate) accounts: PathBuf,
}

impl AppState {
    /// The state of a server on 127.0.0.1:`port`, with a fresh form token; fails when the
    /// operating system gives no random bytes for it.
    pub(crate) fn new(
        config: Config,
        paths: Paths,
        as_of: NaiveDate,
        (ledger, ledger_name): (AnyLedger, String),
        port: u16,
    ) -> Result<AppState> {
        let token = new_token()
            .context("failed to draw the form token from the system's random number generator")?;
        html::check()?;
        Ok(AppState {
            config,
            templates: paths.templates,
            fonts: paths.fonts,
            accounts: paths.accounts,
            as_of,
            ledger: Mutex::new(ledger),
            ledger_name,
            token,
            origins: vec![
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
            ],
            renderer: Mutex::new(None),
            pages: Mutex::new(HashMap::new()),
        })
    }

    /// Templates as they are on disk now.
    fn composer(&self) -> Result<Composer, AppError> {
        Ok(Composer::load(&self.templates, &self.config)?)
    }

    /// Sample accounts as they are on disk now.
    fn samples(&self) -> Result<Samples, AppError> {
        Ok(Samples::load(&self.accounts, &self.config, self.as_of)?)
    }

    fn ledger(&self) -> Result<std::sync::MutexGuard<'_, AnyLedger>, AppError> {
        self.ledger
            .lock()
            .map_err(|_| AppError::from(anyhow!("the ledger connection is poisoned")))
    }

    /// The renderer for the layout files `composer` read (rebuilt when they changed).
    fn renderer(&self, composer: &Composer) -> Result<Renderer, AppError> {
        let mut hasher = Sha256::new();
        let files = composer
            .sources(&missive::compose::template_name(LetterKind::IntentToOffset))
            .unwrap_or_default();
        for (name, text) in files.iter().filter(|(n, _)| n.starts_with("typst/")) {
            hasher.update(name.as_bytes());
            hasher.update(text.as_bytes());
        }
        let layout = hex(&hasher.finalize());
        let mut slot = self
            .renderer
            .lock()
            .map_err(|_| AppError::from(anyhow!("the renderer is poisoned")))?;
        if let Some((hash, renderer)) = slot.as_ref()
            && *hash == layout
        {
            return Ok(renderer.clone());
        }
        let renderer = Renderer::new(&self.fonts, &self.templates.join("typst"))?;
        *slot = Some((layout, renderer.clone()));
        Ok(renderer)
    }

    /// The PNG pages of one letter (cached by its composed source).
    fn pages(
        &self,
        composer: &Composer,
        job: &missive::render::LetterSource,
    ) -> Result<Arc<Vec<Vec<u8>>>, AppError> {
        let key = hex(&Sha256::digest(job.main.as_bytes()));
        if let Some(pages) = self.pages.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(pages);
        }
        let pages = Arc::new(self.renderer(composer)?.render_png(job, PIXEL_PER_PT)?);
        if let Ok(mut cache) = self.pages.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, pages.clone());
        }
        Ok(pages)
    }
}

/// `?account=ID&lang=es`: which sample account to show, and (for a page image) in
/// which language's template (English when absent).
#[derive(Deserialize)]
struct SampleQuery {
    account: Option<String>,
    lang: Option<String>,
}

/// The language of a `lang` query or form value: English when absent, 404/400 when missive
/// has no letters in it.
fn language(tag: Option<&str>, status: StatusCode) -> Result<Language, AppError> {
    match tag.filter(|t| !t.is_empty()) {
        None => Ok(Language::En),
        Some(tag) => Language::from_tag(tag).ok_or_else(|| {
            AppError::new(
                status,
                format!("missive has no letters in language `{tag}`"),
            )
        }),
    }
}

/// The template of `kind` in `lang` and its version on disk now (empty when missing).
fn template_version(composer: &Composer, kind: LetterKind, lang: Language) -> (String, String) {
    let template = template_name_in(kind, lang);
    let sha = composer
        .template_hashes()
        .get(&template)
        .cloned()
        .unwrap_or_default();
    (template, sha)
}

fn letter_type(kind: &str, variant: Option<&str>) -> Result<LetterType, AppError> {
    let text = match variant {
        Some(v) => format!("{kind}/{v}"),
        None => kind.to_owned(),
    };
    LetterType::parse(&text).map_err(|err| AppError::new(StatusCode::NOT_FOUND, err.to_string()))
}

async fn index(State(state): State<Arc<AppState>>) -> Result<Html<String>, AppError> {
    blocking(&state, |state| {
        let composer = state.composer()?;
        let ledger = state.ledger()?;
        let mut rows = Vec::new();
        for t in LetterType::all() {
            let mut cells = Vec::new();
            for lang in Language::ALL {
                let (template, sha) = template_version(&composer, t.kind, lang);
                cells.push(html::IndexCell {
                    lang,
                    state: ApprovalState::of(&**ledger, &template, &sha)?,
                    template,
                    sha256: sha,
                });
            }
            rows.push(html::IndexRow {
                letter_type: t,
                cells,
            });
        }
        Ok(Html(html::index_page(
            &rows,
            &state.accounts.display().to_string(),
            &state.ledger_name,
        )?))
    })
    .await
}

async fn letter_page(
    State(state): State<Arc<AppState>>,
    Path(kind): Path<String>,
    Query(query): Query<SampleQuery>,
) -> Result<Html<String>, AppError> {
    show_letter(state, letter_type(&kind, None)?, query.account).await
}

async fn letter_page_variant(
    State(state): State<Arc<AppState>>,
    Path((kind, variant)): Path<(String, String)>,
    Query(query): Query<SampleQuery>,
) -> Result<Html<String>, AppError> {
    show_letter(state, letter_type(&kind, Some(&variant))?, query.account).await
}

async fn show_letter(
    state: Arc<AppState>,
    letter_type: LetterType,
    account: Option<String>,
) -> Result<Html<String>, AppError> {
    blocking(&state, move |state| {
        let composer = state.composer()?;
        let samples = state.samples()?;
        let mut page = html::LetterPage {
            letter_type,
            samples: samples
                .of_type(letter_type)
                .map(|s| (s.account.account_id.clone(), s.source.clone()))
                .collect(),
            account: None,
            problem: None,
            columns: Vec::new(),
            token: state.token.clone(),
        };
        // The same sample letter, written with each language's template, side by side.
        let sample = match samples.pick(letter_type, account.as_deref()) {
            Ok(sample) => {
                page.account = Some(sample.account.account_id.clone());
                Some(sample)
            }
            Err(err) => {
                page.problem = Some(err.to_string());
                None
            }
        };
        for lang in Language::ALL {
            let (template, sha) = template_version(&composer, letter_type.kind, lang);
            let mut column = html::Column {
                lang,
                state: ApprovalState::of(&**state.ledger()?, &template, &sha)?,
                sources: composer.sources(&template).unwrap_or_default(),
                template,
                sha256: sha,
                pages: 0,
                context: None,
                problem: None,
            };
            if let Some(sample) = sample {
                column.context = composer
                    .context_in(lang, &sample.account, &sample.letter)
                    .ok();
                match sample_job(&composer, &state.config, sample, Some(lang))
                    .map_err(AppError::from)
                    .and_then(|job| state.pages(&composer, &job))
                {
                    Ok(pages) => column.pages = pages.len(),
                    Err(err) => column.problem = Some(format!("{:#}", err.error)),
                }
            }
            page.columns.push(column);
        }
        Ok(Html(html::letter_page(&page)?))
    })
    .await
}

async fn page_image(
    State(state): State<Arc<AppState>>,
    Path((kind, file)): Path<(String, String)>,
    Query(query): Query<SampleQuery>,
) -> Result<Response, AppError> {
    let lang = language(query.lang.as_deref(), StatusCode::NOT_FOUND)?;
    image(state, letter_type(&kind, None)?, lang, file, query.account).await
}

async fn page_image_variant(
    State(state): State<Arc<AppState>>,
    Path((kind, variant, file)): Path<(String, String, String)>,
    Query(query): Query<SampleQuery>,
) -> Result<Response, AppError> {
    let lang = language(query.lang.as_deref(), StatusCode::NOT_FOUND)?;
    image(
        state,
        letter_type(&kind, Some(&variant))?,
        lang,
        file,
        query.account,
    )
    .await
}

/// `N.png`: page N (from 1) of the letter for the sample account, in `lang`.
async fn image(
    state: Arc<AppState>,
    letter_type: LetterType,
    lang: Language,
    file: String,
    account: Option<String>,
) -> Result<Response, AppError> {
    let not_found = || AppError::new(StatusCode::NOT_FOUND, format!("no page `{file}`"));
    let number: usize = file
        .strip_suffix(".png")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(not_found)?;
    let png = blocking(&state, move |state| {
        let composer = state.composer()?;
        let samples = state.samples()?;
        let sample = samples
            .pick(letter_type, account.as_deref())
            .map_err(|err| AppError::new(StatusCode::NOT_FOUND, err.to_string()))?;
        let job = sample_job(&composer, &state.config, sample, Some(lang))?;
        let pages = state.pages(&composer, &job)?;
        Ok(pages.get(number - 1).cloned())
    })
    .await?
    .ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}

/// The approve form.
#[derive(Deserialize)]
struct ApproveForm {
    reviewer: String,
    #[serde(default)]
    note: String,
    /// The version the reviewer looked at.
    sha256: String,
    token: String,
    /// The language whose template is approved (`en` when absent).
    #[serde(default)]
    language: Option<String>,
    /// The letter type page to return to.
    #[serde(default)]
    back: String,
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ApproveForm>,
) -> Result<Response, AppError> {
    same_origin(&state, &headers, &form.token)?;
    let kind = LetterKind::from_name(&kind)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("no kind `{kind}`")))?;
    let back = LetterType::parse(&form.back)
        .ok()
        .filter(|t| t.kind == kind)
        .unwrap_or(LetterType {
            kind,
            variant: None,
        });
    let lang = language(form.language.as_deref(), StatusCode::BAD_REQUEST)?;
    blocking(&state, move |state| {
        let composer = state.composer()?;
        let template = template_name_in(kind, lang);
        let current = composer.template_hashes().get(&template).cloned();
        if current.as_deref() != Some(form.sha256.as_str()) {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                format!(
                    "`{template}` changed since the page was loaded; reload it, look again, then approve"
                ),
            ));
        }
        let sources = composer.sources(&template).unwrap_or_default();
        state
            .ledger()?
            .record_approval(&NewApproval {
                template,
                template_sha256: form.sha256,
                reviewer: form.reviewer,
                note: form.note,
                sources,
            })
            .map_err(|err| match err {
                missive::ledger::LedgerError::BadApproval { .. } => {
                    AppError::new(StatusCode::BAD_REQUEST, err.to_string())
                }
                other => AppError::from(other),
            })?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/{back}")).into_response())
}

#[cfg(test)]
mod tests;
