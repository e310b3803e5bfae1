//! Fleet health pages against a fleet file and a catalogue fixture: RPO states per
//! database and type, filters, failures of the last day, per-instance facts, the
//! storage page and the SVG charts.

mod catalog_fixture;
mod web_session;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bakfleet::account::Role;
use bakfleet::backup::BackupType;
use bakfleet::catalog::{Catalog, DatabaseFacts, InstanceFacts, CHART_INTERVAL};
use bakfleet::fleet::Fleet;
use bakfleet::store::Store;
use bakfleet::web::{router, FleetInForce, SessionSettings, WebState};
use catalog_fixture::{add_backup, new_run, record, T0};
use http_body_util::BodyExt;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

const MIB: u64 = 1 << 20;

/// A database name with markup, to check that pages and charts escape it.
const MARKUP_NAME: &str = "stale<b>&'db";

const FLEET: &str = r#"
[policy.critical]
rpo = { full = "2d", log = "10m" }

[[instance]]
name = "sales-prod"
host = "sql01.corp.example"
auth = { kind = "sql", user = "bakfleet", password_env = "SQL_PASSWORD" }
staging = { local = { server_path = "D:\\Backup", dir = "/srv/staging/sales" } }
database_policies = [{ databases = ["billing"], policy = "critical" }]

[[instance]]
name = "hr-linux"
host = "sql02.corp.example"
auth = { kind = "sql", user = "bakfleet", password_env = "SQL_PASSWORD" }
staging = { local = { server_path = "/var/opt/mssql/backup", dir = "/srv/staging/hr" } }
"#;

/// Ids the fixture stored.
struct Sample {
    connect_failure_run: i64,
    older_failure_run: i64,
}

async fn add_instance(catalog: &Catalog, name: &str, version: Option<&str>) {
    catalog
        .upsert_instance(&InstanceFacts {
            name: name.to_string(),
            host: format!("{name}.corp.example"),
            port: 1433,
            product_version: version.map(str::to_string),
            edition: version.map(|_| "Standard Edition (64-bit)".to_string()),
            engine_edition: version.map(|_| 2),
            server_name: None,
        })
        .await
        .unwrap();
}

async fn add_database(catalog: &Catalog, instance: &str, name: &str, recovery_model: &str) {
    let facts = DatabaseFacts {
        name: name.to_string(),
        recovery_model: Some(recovery_model.to_string()),
        state: Some("ONLINE".to_string()),
    };
    catalog.upsert_database(instance, &facts).await.unwrap();
}

async fn backup(
    catalog: &Catalog,
    database: &str,
    backup_type: BackupType,
    age: Duration,
    size: u64,
) -> i64 {
    let now = OffsetDateTime::now_utc();
    let backup = record("sales-prod", database, backup_type, now - age, size);
    add_backup(catalog, &backup).await.1
}

/// Stores, relative to now:
/// - `orders` (FULL): every type within its derived RPO;
/// - `billing` (policy critical, RPO full 2 d): a 3-day-old full, so full is late;
/// - `reports` (SIMPLE): full and diff fresh, no log type;
/// - [`MARKUP_NAME`] (FULL): a 20-day-old full, no diff or log, a pruned old full;
/// - `payroll` on `hr-linux`: no backup, its last run failed to connect.
async fn sample_catalog(catalog: &Catalog) -> Sample {
    let now = OffsetDateTime::now_utc();
    add_instance(catalog, "sales-prod", Some("16.0.1000.6")).await;
    add_instance(catalog, "hr-linux", None).await;
    add_database(catalog, "sales-prod", "orders", "FULL").await;
    add_database(catalog, "sales-prod", "billing", "FULL").await;
    add_database(catalog, "sales-prod", "reports", "SIMPLE").await;
    add_database(catalog, "sales-prod", MARKUP_NAME, "FULL").await;
    add_database(catalog, "hr-linux", "payroll", "FULL").await;

    backup(
        catalog,
        "orders",
        BackupType::Full,
        Duration::days(2),
        5 * MIB,
    )
    .await;
    backup(catalog, "orders", BackupType::Diff, Duration::hours(5), MIB).await;
    backup(
        catalog,
        "orders",
        BackupType::Log,
        Duration::minutes(5),
        4096,
    )
    .await;

    backup(
        catalog,
        "billing",
        BackupType::Full,
        Duration::days(3),
        2 * MIB,
    )
    .await;
    backup(
        catalog,
        "billing",
        BackupType::Diff,
        Duration::hours(1),
        MIB,
    )
    .await;
    backup(
        catalog,
        "billing",
        BackupType::Log,
        Duration::minutes(5),
        4096,
    )
    .await;

    backup(catalog, "reports", BackupType::Full, Duration::days(1), MIB).await;
    backup(
        catalog,
        "reports",
        BackupType::Diff,
        Duration::hours(2),
        MIB,
    )
    .await;

    let old = backup(
        catalog,
        MARKUP_NAME,
        BackupType::Full,
        Duration::days(50),
        8 * MIB,
    )
    .await;
    catalog
        .mark_pruned(old, "retention", now - Duration::days(10))
        .await
        .unwrap();
    backup(
        catalog,
        MARKUP_NAME,
        BackupType::Full,
        Duration::days(40),
        2 * MIB,
    )
    .await;
    backup(
        catalog,
        MARKUP_NAME,
        BackupType::Full,
        Duration::days(20),
        MIB,
    )
    .await;

    let older_failure_run = failed_run(
        catalog,
        "sales-prod",
        "orders",
        Duration::hours(3),
        "backup",
    )
    .await;
    let connect_failure_run = failed_run(
        catalog,
        "hr-linux",
        "payroll",
        Duration::hours(1),
        "connect",
    )
    .await;
    // A failure older than 24 hours stays off the overview's failure list.
    failed_run(
        catalog,
        "sales-prod",
        "reports",
        Duration::hours(30),
        "fetch",
    )
    .await;

    Sample {
        connect_failure_run,
        older_failure_run,
    }
}

async fn failed_run(
    catalog: &Catalog,
    instance: &str,
    database: &str,
    age: Duration,
    phase: &str,
) -> i64 {
    let started_at = OffsetDateTime::now_utc() - age;
    let run = new_run(instance, database, BackupType::Log, started_at);
    let run_id = catalog.start_run(&run).await.unwrap();
    let error = format!("{phase} failed: login timed out <after 15 s>");
    catalog.fail_run(run_id, phase, &error).await.unwrap();
    run_id
}

/// Builds the site with the fixture fleet and every request logged in as a viewer.
async fn site(catalog: Catalog, store: Option<Arc<Store>>) -> Router {
    let fleet = Fleet::parse(FLEET, Path::new("fleet.toml")).expect("fixture fleet is valid");
    let session = web_session::session_for(&catalog, Role::Viewer).await;
    let router = router(WebState {
        catalog,
        fleet_name: "/etc/bakfleet/fleet.toml".to_string(),
        started_at: T0,
        limits: None,
        fleet_status: None,
        sessions: SessionSettings::default(),
        store,
        run_requests: None,
        fleet: Some(FleetInForce::Fixed(Arc::new(fleet))),
        metrics: false,
        live: None,
    });
    web_session::with_session(router, &session)
}

async fn sample_site() -> (Router, Sample) {
    let catalog = Catalog::open_in_memory().await.unwrap();
    let sample = sample_catalog(&catalog).await;
    (site(catalog, None).await, sample)
}

async fn get(site: &Router, uri: &str) -> (StatusCode, String) {
    let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let response = site.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Returns the part of the overview after the failure list: the instance sections.
fn instances_part(page: &str) -> &str {
    let start = page.find("<section class=\"instance\">").unwrap_or(0);
    &page[start..]
}

/// Returns the table row that links to `database`, from `<tr` to `</tr>`, outside the
/// failure list.
fn database_row<'a>(page: &'a str, database: &str) -> &'a str {
    let page = instances_part(page);
    let link = format!("/databases/{database}\">");
    let at = page
        .find(&link)
        .unwrap_or_else(|| panic!("no row links to {database}: {page}"));
    let start = page[..at].rfind("<tr").expect("row start");
    let end = at + page[at..].find("</tr>").expect("row end");
    &page[start..end]
}

/// Returns the text of the element with `id`, from its opening tag to the next `<`.
fn element_text<'a>(page: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no element {id}: {page}"))
        + marker.len();
    let end = start + page[start..].find('<').expect("element end");
    &page[start..end]
}

#[tokio::test]
async fn overview_counts_states() {
    let (site, _) = sample_site().await;
    let (status, page) = get(&site, "/").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(element_text(&page, "count-ok"), "2", "orders and reports");
    assert_eq!(
        element_text(&page, "count-late"),
        "2",
        "billing, and the markup database whose old full counts for its log"
    );
    assert_eq!(element_text(&page, "count-missing"), "1", "payroll");
}

#[tokio::test]
async fn overview_colours_types_by_rpo() {
    let (site, _) = sample_site().await;
    let (_, page) = get(&site, "/").await;

    let orders = database_row(&page, "orders");
    assert_eq!(orders.matches("age ok").count(), 3, "{orders}");

    let billing = database_row(&page, "billing");
    assert!(billing.contains("<td>critical</td>"), "{billing}");
    assert!(billing.contains("age late"), "{billing}");
    assert!(
        billing.contains("RPO 2 d 0 h"),
        "policy RPO of full: {billing}"
    );
    assert!(
        billing.contains("RPO 10 min"),
        "policy RPO of log: {billing}"
    );

    let reports = database_row(&page, "reports");
    assert!(
        reports.contains("age unscheduled"),
        "log of a SIMPLE database: {reports}"
    );
    assert!(!reports.contains("age missing"), "{reports}");

    let markup = database_row(&page, "stale%3Cb%3E%26%27db");
    assert_eq!(
        markup.matches("age late").count(),
        3,
        "a 20-day-old full, which also counts for diff and log: {markup}"
    );
    assert_eq!(markup.matches("age missing").count(), 0, "{markup}");
    assert!(
        markup.contains("stale&lt;b&gt;&amp;&#x27;db"),
        "name not escaped: {markup}"
    );
}

#[tokio::test]
async fn overview_filters_by_query() {
    let (site, _) = sample_site().await;

    let (_, late) = get(&site, "/?state=late").await;
    let late = instances_part(&late);
    assert!(late.contains("/databases/billing\""), "{late}");
    assert!(late.contains("/databases/stale%3Cb"), "late full: {late}");
    assert!(!late.contains("/databases/orders\""), "{late}");

    let (_, hr) = get(&site, "/?instance=hr-linux&state=&policy=").await;
    assert!(hr.contains("/databases/payroll\""), "{hr}");
    assert!(!hr.contains("<h2>sales-prod</h2>"), "{hr}");

    let (_, critical_page) = get(&site, "/?policy=critical").await;
    let critical = instances_part(&critical_page);
    assert!(critical.contains("/databases/billing\""), "{critical}");
    assert!(!critical.contains("/databases/reports\""), "{critical}");
    assert!(
        critical_page.contains("<option value=\"critical\" selected>"),
        "form keeps the filter: {critical_page}"
    );

    let (_, ok) = get(&site, "/?state=ok").await;
    let ok = instances_part(&ok);
    assert!(ok.contains("/databases/reports\""), "{ok}");
    assert!(!ok.contains("/databases/billing\""), "{ok}");
}

#[tokio::test]
async fn overview_rejects_unknown_state() {
    let (site, _) = sample_site().await;
    let (status, page) = get(&site, "/?state=stale").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("ok, late or missing"), "{page}");
}

#[tokio::test]
async fn overview_lists_recent_failures_first() {
    let (site, sample) = sample_site().await;
    let (_, page) = get(&site, "/").await;

    let failures = page
        .find("Failed in the last 24 hours")
        .expect("failure list");
    let first_instance = page.find("<section class=\"instance\">").expect("instance");
    assert!(failures < first_instance, "failures come first");
    let newest = page
        .find(&format!("href=\"/runs/{}\"", sample.connect_failure_run))
        .expect("connect failure listed");
    let older = page
        .find(&format!("href=\"/runs/{}\"", sample.older_failure_run))
        .expect("older failure listed");
    assert!(newest < older, "newest failure first");
    assert!(
        !page[..first_instance].contains("fetch failed"),
        "a 30-hour-old failure is listed: {page}"
    );
    assert!(
        page.contains("login timed out &lt;after 15 s&gt;"),
        "error not escaped: {page}"
    );
}

#[tokio::test]
async fn overview_shows_instance_facts() {
    let (site, sample) = sample_site().await;
    let (_, page) = get(&site, "/").await;

    let hr_start = page.find("<h2>hr-linux</h2>").expect("hr-linux section");
    let sales = &page[..hr_start];
    let hr = &page[hr_start..];
    assert!(sales.contains("16.0.1000.6"), "{sales}");
    assert!(
        sales.contains("<span class=\"status succeeded\">yes</span>"),
        "sales-prod connected: {sales}"
    );
    assert!(
        sales.contains("&#x2f;srv&#x2f;staging&#x2f;sales"),
        "staging: {sales}"
    );
    assert!(
        sales.contains("<dd class=\"database-count\">4</dd>"),
        "{sales}"
    );
    assert!(hr.contains("not connected yet"), "{hr}");
    assert!(
        hr.contains("<span class=\"status failed\">no</span>"),
        "hr-linux unreachable: {hr}"
    );
    assert!(
        hr.contains(&format!("href=\"/runs/{}\"", sample.connect_failure_run)),
        "{hr}"
    );
}

#[tokio::test]
async fn storage_sums_bytes_and_growth() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    sample_catalog(&catalog).await;
    let store_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(store_dir.path()).unwrap());
    let site = site(catalog, Some(store)).await;

    let (status, page) = get(&site, "/storage").await;

    assert_eq!(status, StatusCode::OK);
    // orders 6 MiB + 4 KiB, billing 3 MiB + 4 KiB, reports 2 MiB, markup 3 MiB.
    assert_eq!(element_text(&page, "total-bytes"), "14.0 MiB");
    let markup = database_row(&page, "stale%3Cb%3E%26%27db");
    assert!(markup.contains("<td>2</td>"), "backups kept: {markup}");
    assert!(markup.contains("3.0 MiB"), "stored: {markup}");
    assert!(
        markup.contains("−7.0 MiB"),
        "8 MiB pruned 10 days ago, 1 MiB added: {markup}"
    );
    let orders = database_row(&page, "orders");
    assert!(orders.contains("+6.0 MiB"), "{orders}");
    let free = element_text(&page, "store-free");
    assert!(free.ends_with("B"), "free space of the store: {free}");
}

#[tokio::test]
async fn storage_heat_map_is_svg() {
    let (site, _) = sample_site().await;
    let (_, page) = get(&site, "/storage").await;

    let svg = svg_after(&page, "id=\"age-heat-map\"");
    check_svg(svg);
    assert_eq!(svg.matches("<rect").count(), 5, "one square per database");
    assert!(
        svg.contains("stale&lt;b&gt;&amp;&#39;db on sales-prod: late"),
        "{svg}"
    );
}

#[tokio::test]
async fn database_charts_are_svg() {
    let (site, _) = sample_site().await;
    let (status, page) = get(&site, "/instances/sales-prod/databases/orders").await;

    assert_eq!(status, StatusCode::OK);
    for id in ["chart-size", "chart-duration", "chart-throughput"] {
        let svg = svg_after(&page, &format!("id=\"{id}\""));
        check_svg(svg);
        assert_eq!(svg.matches("<circle cx").count() - 3, 3, "{id}: {svg}");
    }
    assert!(page.contains("RPO 8 d 18 h"), "{page}");
}

#[tokio::test]
async fn database_chart_sums_up_an_interval_per_type() {
    let catalog = Catalog::open_in_memory().await.unwrap();
    sample_catalog(&catalog).await;
    // Four logs in the 12-hour interval before the current one, which has ended, so that
    // the test does not depend on the time of day.
    let interval = CHART_INTERVAL.whole_seconds();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let previous = OffsetDateTime::from_unix_timestamp(now - now % interval - interval).unwrap();
    for (hours, size) in [(1, 1000), (2, 9 * 1024), (3, 2000), (4, 500)] {
        let finish = previous + Duration::hours(hours);
        let log = record("sales-prod", "ledger", BackupType::Log, finish, size);
        add_backup(&catalog, &log).await;
    }
    let site = site(catalog, None).await;

    let (_, page) = get(&site, "/instances/sales-prod/databases/ledger").await;

    let svg = svg_after(&page, "id=\"chart-size\"");
    assert_eq!(
        svg.matches("<circle cx").count() - 3,
        1,
        "one point for the interval: {svg}"
    );
    assert!(svg.contains("largest of 4: 9.0 KiB"), "{svg}");
    // The point sits at the interval's newest backup.
    let newest = previous + Duration::hours(4);
    let title = format!(
        "log {} {:02}:{:02} UTC: largest of 4",
        newest.date(),
        newest.hour(),
        newest.minute()
    );
    assert!(svg.contains(&title), "{title} in {svg}");
}

/// Returns the first `<svg>...</svg>` after `marker`.
fn svg_after<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} missing: {page}"));
    let start = at + page[at..].find("<svg").expect("svg start");
    let end = start + page[start..].find("</svg>").expect("svg end") + "</svg>".len();
    &page[start..end]
}

/// Checks that `svg` is well-formed XML (balanced tags, quoted attributes, escaped
/// text) and names no URL but the SVG namespace.
fn check_svg(svg: &str) {
    let without_namespace = svg.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for forbidden in ["http:", "https:", "//", "href", "url(", "<script", "<image"] {
        assert!(
            !without_namespace.contains(forbidden),
            "{forbidden:?} in {svg}"
        );
    }
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        assert!(!text.contains('>'), "unescaped > in text {text:?}");
        check_entities(text);
        let end = start + rest[start..].find('>').expect("tag end");
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "< inside tag {tag:?}");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag:?}"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing tag {name} out of order");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("tag name");
            open.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed tags {open:?}");
    assert!(rest.is_empty(), "text after the root element: {rest:?}");
}

fn check_entities(text: &str) {
    for (index, _) in text.match_indices('&') {
        let entity = &text[index..];
        let known = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
            .iter()
            .any(|name| entity.starts_with(name));
        assert!(known, "bare & in {text:?}");
    }
}
