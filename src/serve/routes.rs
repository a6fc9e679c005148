//! The router: small handlers, validation in extractors, a deadline and a
//! body limit as middleware.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::metrics::QueryHandles;
use super::params::{self, BatchQuery, KnnParams, QueryFields, RadiusParams, StatsParams};
use super::{AppState, Problem};
use crate::layer::{Answer, AnswerDocument, BodyFormat, Layer, LayerKind};

type Shared = Arc<AppState>;

/// The service's routes over `state`.
pub(crate) fn router(state: Shared, timeout: Duration, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/layers", get(layers))
        .route("/v1/layers/{name}/knn", get(knn_get).post(knn_post))
        .route("/v1/layers/{name}/radius", get(radius_get))
        .route("/v1/layers/{name}/stats", get(stats_get))
        .route("/v1/layers/{name}/batch", post(batch_post))
        .route("/v1/layers/{name}/reload", post(reload_post))
        // Only PUT: other methods keep the 404 of an unknown route.
        .route("/v1/layers/{name}", put(layer_put).fallback(not_found))
        .route("/v1/layers/{name}/points", post(points_post))
        .route("/v1/layers/{name}/points/{id}", delete(point_delete))
        .route("/metrics", get(metrics_get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// The `route` label of the metrics: the endpoint's last path segment
/// (`knn`, `radius`, `stats`, `batch`, `reload`, `layers`, `healthz`,
/// `readyz`, `metrics`), `layer` for `PUT /v1/layers/{name}`, `points` for
/// the points routes, `other` for anything else.
fn route_of(path: &str) -> &'static str {
    let mut segments = [""; 6];
    let mut n = 0;
    for segment in path.trim_start_matches('/').split('/') {
        if n == segments.len() {
            return "other";
        }
        segments[n] = segment;
        n += 1;
    }
    match &segments[..n] {
        ["healthz"] => "healthz",
        ["readyz"] => "readyz",
        ["metrics"] => "metrics",
        ["v1", "layers"] => "layers",
        ["v1", "layers", _, "knn"] => "knn",
        ["v1", "layers", _, "radius"] => "radius",
        ["v1", "layers", _, "stats"] => "stats",
        ["v1", "layers", _, "batch"] => "batch",
        ["v1", "layers", _, "reload"] => "reload",
        ["v1", "layers", _] => "layer",
        ["v1", "layers", _, "points"] | ["v1", "layers", _, "points", _] => "points",
        _ => "other",
    }
}

/// Counts every answer by route and status; logs it at debug level.
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = route_of(request.uri().path());
    let started = Instant::now();
    let query = log::log_enabled!(log::Level::Debug)
        .then(|| request.uri().query().unwrap_or("").to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics_handles.request(route, status);
    if let Some(query) = query {
        log::debug!("{route} {query} -> {status} in {} us", micros(started));
    }
    response
}

/// 503 with a problem body when the handler takes longer than the deadline.
async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than the {} ms deadline",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such route (see /v1/layers)")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<Shared>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "layers are still loading").into_response()
    }
}

async fn layers(State(state): State<Shared>) -> Response {
    let layers: Vec<Value> = state
        .slots
        .iter()
        .map(|slot| {
            let mut v = match slot.current.load_full() {
                Some(layer) => describe(&layer),
                None => {
                    json!({"name": slot.spec.name, "status": "loading", "source": slot.spec.path})
                }
            };
            v["reloading"] = json!(slot.reloading.load(Ordering::Acquire));
            if let Some(log) = &slot.changes.lock().unwrap_or_else(|e| e.into_inner()).log {
                v["changes_pending"] = json!(log.has_pending());
                v["next_id"] = json!(log.next_id());
            }
            v["last_reload_error"] = json!(
                *slot
                    .last_reload_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            );
            v
        })
        .collect();
    axum::Json(json!({ "layers": layers })).into_response()
}

/// What `GET /v1/layers` says of one layer.
fn describe(layer: &Layer) -> Value {
    let n = layer.len();
    let height = layer.tree().tree_height();
    let log2_n = if n > 0 { (n as f64).log2() } else { 0.0 };
    json!({
        "name": layer.name,
        "status": "ready",
        "kind": layer.kind,
        "points": n,
        "bbox": layer.bbox,
        "crs": layer.crs,
        "source": layer.source,
        "generation": layer.generation,
        "deleted_since_build": layer.tombstones().len(),
        "load_ms": layer.load_ms,
        "build_ms": layer.build_ms,
        "tree_height": height,
        "log2_n": log2_n,
        "tree_height_over_log2_n": if n > 1 { height as f64 / log2_n } else { 0.0 },
        "index_bytes": layer.index_bytes(),
        "attribute_bytes": layer.attribute_bytes(),
        "attributes": layer.attributes().names,
        "category": layer.category_name(),
    })
}

/// A validated query on a named layer, from the path and the query string.
struct LayerQuery<P> {
    layer: Arc<Layer>,
    metrics: Arc<QueryHandles>,
    params: P,
}

/// How a query type is read from a query string.
trait FromQuery: Sized {
    fn from_query(
        fields: &QueryFields<'_>,
        layer: &Layer,
        state: &AppState,
    ) -> Result<Self, Problem>;
}

impl FromQuery for KnnParams {
    fn from_query(
        fields: &QueryFields<'_>,
        layer: &Layer,
        state: &AppState,
    ) -> Result<Self, Problem> {
        params::knn(fields, layer.kind, &state.limits)
    }
}

impl FromQuery for RadiusParams {
    fn from_query(
        fields: &QueryFields<'_>,
        layer: &Layer,
        state: &AppState,
    ) -> Result<Self, Problem> {
        params::radius(fields, layer.kind, &state.limits)
    }
}

impl FromQuery for StatsParams {
    fn from_query(
        fields: &QueryFields<'_>,
        layer: &Layer,
        state: &AppState,
    ) -> Result<Self, Problem> {
        params::stats(fields, layer.kind, &state.limits)
    }
}

/// The current snapshot of the layer named in the path and its metrics.
async fn layer_of(
    parts: &mut Parts,
    state: &Shared,
) -> Result<(Arc<Layer>, Arc<QueryHandles>), Problem> {
    let Path(name) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, e.body_text()))?;
    let slot = state.slot(&name)?;
    Ok((state.layer(&name)?, state.slots[slot].metrics.clone()))
}

impl<P: FromQuery + Send> FromRequestParts<Shared> for LayerQuery<P> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Problem> {
        let (layer, metrics) = layer_of(parts, state).await?;
        let fields = QueryFields::parse(parts.uri.query())?;
        let params = P::from_query(&fields, &layer, state)?;
        Ok(LayerQuery {
            layer,
            metrics,
            params,
        })
    }
}

/// A named layer and a JSON request body (`application/json` or
/// `application/geo+json`), parsed; rejections become problems (413, 415,
/// 400).
struct LayerJson {
    layer: Arc<Layer>,
    metrics: Arc<QueryHandles>,
    body: Value,
    state: Shared,
}

impl FromRequest<Shared> for LayerJson {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Problem> {
        let (mut parts, body) = request.into_parts();
        let (layer, metrics) = layer_of(&mut parts, state).await?;
        let json_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v == "application/geo+json");
        if !json_type {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON: Content-Type: application/json",
            ));
        }
        let request = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| Problem::new(e.status(), e.body_text()))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Problem::invalid("body", "valid JSON", format!("malformed JSON: {e}")))?;
        Ok(LayerJson {
            layer,
            metrics,
            body,
            state: state.clone(),
        })
    }
}

/// A JSON answer with its media type.
fn document(doc: &AnswerDocument<'_>) -> Response {
    match serde_json::to_vec(doc) {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(doc.content_type()),
            );
            response
        }
        Err(e) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

/// An answer and the microseconds it took; `truncated` is reported for
/// radius queries.
struct Timed {
    answer: Answer,
    took_us: u64,
    with_truncated: bool,
}

fn run_knn(layer: &Layer, metrics: &QueryHandles, q: &KnnParams) -> Result<Timed, Problem> {
    let started = Instant::now();
    let answer = layer.knn(q.at, q.k, q.max_radius, q.category.as_deref())?;
    metrics.query("knn", started.elapsed().as_secs_f64(), answer.nodes_visited);
    Ok(Timed {
        answer,
        took_us: micros(started),
        with_truncated: false,
    })
}

fn run_radius(layer: &Layer, metrics: &QueryHandles, q: &RadiusParams) -> Result<Timed, Problem> {
    let started = Instant::now();
    let answer = layer.radius(q.at, q.radius, q.limit)?;
    metrics.query(
        "radius",
        started.elapsed().as_secs_f64(),
        answer.nodes_visited,
    );
    Ok(Timed {
        answer,
        took_us: micros(started),
        with_truncated: true,
    })
}

fn respond(layer: &Layer, result: Result<Timed, Problem>) -> Response {
    let t = match result {
        Ok(t) => t,
        Err(problem) => return problem.into_response(),
    };
    let mut body = Vec::new();
    match layer.write_answer(&t.answer, t.took_us, t.with_truncated, &mut body) {
        Ok(()) => {
            let mut response = body.into_response();
            let media = layer.answer_document(&t.answer, 0, false).content_type();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
            response
        }
        Err(e) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn knn_get(
    LayerQuery {
        layer,
        metrics,
        params,
    }: LayerQuery<KnnParams>,
) -> Response {
    respond(&layer, run_knn(&layer, &metrics, &params))
}

async fn knn_post(request: LayerJson) -> Response {
    let params = params::knn_body(&request.body, request.layer.kind, &request.state.limits);
    respond(
        &request.layer,
        params.and_then(|p| run_knn(&request.layer, &request.metrics, &p)),
    )
}

async fn radius_get(
    LayerQuery {
        layer,
        metrics,
        params,
    }: LayerQuery<RadiusParams>,
) -> Response {
    respond(&layer, run_radius(&layer, &metrics, &params))
}

async fn stats_get(LayerQuery { layer, params, .. }: LayerQuery<StatsParams>) -> Response {
    let started = Instant::now();
    match layer.stats(params.at, params.radius, params.by.as_deref()) {
        Ok(stats) => document(&layer.stats_document(&stats, micros(started))),
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn batch_post(request: LayerJson) -> Response {
    let queries = match params::batch_body(&request.body, request.layer.kind, &request.state.limits)
    {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    let (layer, metrics) = (request.layer, request.metrics);
    let answered = tokio::task::spawn_blocking(move || {
        let answers = queries
            .par_iter()
            .map(|q| match q {
                BatchQuery::Knn(p) => run_knn(&layer, &metrics, p),
                BatchQuery::Radius(p) => run_radius(&layer, &metrics, p),
            })
            .collect::<Result<Vec<Timed>, Problem>>()?;
        let mut body = vec![b'['];
        for (j, t) in answers.iter().enumerate() {
            if j > 0 {
                body.push(b',');
            }
            layer
                .write_answer(&t.answer, t.took_us, t.with_truncated, &mut body)
                .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        }
        body.push(b']');
        Ok::<_, Problem>(body)
    })
    .await;
    match answered {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(problem)) => problem.into_response(),
        Err(e) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Checks `Authorization: Bearer TOKEN` against the admin token: 403 when
/// the service has none (admin routes disabled), 401 when it is missing or
/// wrong.
fn check_admin(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let Some(token) = &state.admin_token else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "admin routes are disabled: start the service with --admin-token-file",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| g.as_bytes() == token.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "a valid 'Authorization: Bearer TOKEN' header is required",
        ))
    }
}

/// `POST /v1/layers/{name}/reload` (admin): reload the layer's file in the
/// background; 202 with the generation that will hold it.
async fn reload_post(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(p) = check_admin(&state, &headers) {
        return p.into_response();
    }
    let slot = match state.slot(&name) {
        Ok(slot) => slot,
        Err(p) => return p.into_response(),
    };
    let generation = state.slots[slot].generation.load(Ordering::Acquire);
    let next = super::reload::request_reload(&state, slot);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"layer": name, "generation": generation, "next_generation": next})),
    )
        .into_response()
}

/// The checks every change route makes: the bearer token (403 / 401), the
/// layer (404, 503 while loading), its kind (409 for cartesian layers).
fn admin_slot(
    state: &AppState,
    name: &str,
    headers: &axum::http::HeaderMap,
) -> Result<(usize, Arc<Layer>), Problem> {
    check_admin(state, headers)?;
    let slot = state.slot(name)?;
    let layer = state.layer(name)?;
    if layer.kind != LayerKind::Geographic {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "layer '{name}' is cartesian (a point cloud file): it changes only by \
                 replacing its file and reloading"
            ),
        ));
    }
    Ok((slot, layer))
}

/// The body of a change request: GeoJSON (`application/geo+json` or
/// `application/json`) or CSV (`text/csv`); 415 for another type, 413 over
/// the body limit.
async fn change_body(request: Request, state: &Shared) -> Result<(BodyFormat, Bytes), Problem> {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media.as_str() {
        "application/json" | "application/geo+json" => BodyFormat::GeoJson,
        "text/csv" => BodyFormat::Csv,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be GeoJSON (Content-Type: application/geo+json) \
                 or CSV (Content-Type: text/csv)",
            ));
        }
    };
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|e| Problem::new(e.status(), e.body_text()))?;
    Ok((format, bytes))
}

/// Parses a change body off the async workers.
async fn parse_body(
    state: &Shared,
    slot: usize,
    format: BodyFormat,
    bytes: Bytes,
) -> Result<crate::layer::ParsedPoints, Problem> {
    let spec = state.slots[slot].spec.clone();
    tokio::task::spawn_blocking(move || crate::layer::parse_points(&bytes, format, &spec))
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(Problem::from)
}

fn accepted(mut body: Value) -> Response {
    body["status"] = json!("accepted");
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// Runs `change` on the slot's change log under its lock; returns its
/// result, the current generation and the one that will hold the change,
/// and schedules the rebuild.
fn with_log<T>(
    state: &Shared,
    slot: usize,
    change: impl FnOnce(&mut crate::layer::ChangeLog) -> crate::Result<T>,
) -> Result<(T, u64, u64), Problem> {
    let s = &state.slots[slot];
    let outcome = {
        let mut changes = s.changes.lock().unwrap_or_else(|e| e.into_inner());
        let next = super::reload::next_generation(s, &changes);
        let log = changes.log.as_mut().ok_or_else(|| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the layer is still loading",
            )
        })?;
        let value = change(log)?;
        (value, s.generation.load(Ordering::Acquire), next)
    };
    super::reload::schedule(state, slot);
    Ok(outcome)
}

/// `PUT /v1/layers/{name}` (admin): replace the layer's content with the
/// body's points (ids `0..m` in body order); 202 with the generation that
/// will hold it.
async fn layer_put(
    State(state): State<Shared>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let result = async {
        let (slot, _) = admin_slot(&state, &name, request.headers())?;
        let (format, bytes) = change_body(request, &state).await?;
        let parsed = parse_body(&state, slot, format, bytes).await?;
        let spec = state.slots[slot].spec.clone();
        let (points, generation, next) = with_log(&state, slot, |log| log.replace(parsed, &spec))?;
        Ok::<_, Problem>(accepted(json!({
            "layer": name,
            "generation": generation,
            "next_generation": next,
            "points": points,
        })))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/layers/{name}/points` (admin): append the body's points
/// (columns those of the layer); 202 with their ids and the generation that
/// will hold them.
async fn points_post(
    State(state): State<Shared>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let result = async {
        let (slot, _) = admin_slot(&state, &name, request.headers())?;
        let (format, bytes) = change_body(request, &state).await?;
        let parsed = parse_body(&state, slot, format, bytes).await?;
        let (ids, generation, next) = with_log(&state, slot, |log| log.append(&parsed))?;
        Ok::<_, Problem>(accepted(json!({
            "layer": name,
            "generation": generation,
            "next_generation": next,
            "ids": ids,
        })))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /v1/layers/{name}/points/{id}` (admin): delete a point; hidden
/// from every answer from now on, gone from the index in the generation
/// named in the 202.
async fn point_delete(
    State(state): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let result = (|| {
        let (slot, _) = admin_slot(&state, &name, &headers)?;
        let id: u64 = id.parse().map_err(|_| {
            Problem::invalid(
                "id",
                "a point id: an integer ≥ 0",
                format!("id = '{id}' is not a point id"),
            )
        })?;
        let (_, generation, next) = with_log(&state, slot, |log| {
            // The snapshot under the lock: the one a tombstone must mark.
            match state.slots[slot].current.load_full() {
                Some(current) => log.delete(id, &current),
                None => Err(crate::Error::Conflict {
                    reason: "the layer is still loading".into(),
                }),
            }
        })?;
        Ok::<_, Problem>(accepted(json!({
            "layer": name,
            "generation": generation,
            "next_generation": next,
            "id": id,
        })))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics_get(State(state): State<Shared>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available in this process",
        )
        .into_response(),
    }
}
