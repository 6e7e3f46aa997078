//! Practice: experiments.

use super::*;

pub(super) fn experiments(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let r = run(ctx, Call::new(&["experiment", "list"]))?;
    let exps = list(&r, "experiments");
    if exps.is_empty() {
        return Ok(empty(
            ctx,
            "No experiment is defined. Define one with `shoplens experiment define KEY …`.",
        ));
    }
    let mut out = section(
        "list",
        ctx.t("Experiments"),
        "",
        &table(
            ctx,
            &[
                col(ctx.t("Experiment"), "key", Fmt::Text),
                col(ctx.t("Name"), "name", Fmt::Text),
                col(ctx.t("Status"), "status", Fmt::Text),
                col(ctx.t("Surface"), "surface", Fmt::Text),
                col(ctx.t("Variants"), "variants", Fmt::Text),
                col(ctx.t("Starts"), "starts_at", Fmt::Date),
                col(ctx.t("Ends"), "ends_at", Fmt::Date),
            ],
            exps,
        ),
    );
    for e in exps {
        let key = text(e, "key");
        let a = match run(
            ctx,
            Call::new(&["experiment", "analyze"]).with("experiment", &key),
        ) {
            Ok(a) => a,
            Err(err) => {
                out.push_str(&section(
                    &format!("exp-{key}"),
                    &key,
                    "",
                    &format!(r#"<p class="err">{}</p>"#, esc(&err.message)),
                ));
                continue;
            }
        };
        let rows: Vec<Interval> = list(&a, "results")
            .iter()
            .map(|x| Interval {
                label: format!("{} · {}", text(x, "metric"), text(x, "variant")),
                estimate: num(x, "relative_lift"),
                low: num(x, "relative_ci_low"),
                high: num(x, "relative_ci_high"),
                significant: num(x, "relative_ci_low") > 0.0 || num(x, "relative_ci_high") < 0.0,
            })
            .collect();
        let mut s = charts::intervals(&key, &rows, &|v| format!("{:+.1}%", v * 100.0));
        let srm = field_of(&a, "srm").cloned().unwrap_or(Value::Null);
        if field_of(&srm, "flagged") == Some(&Value::Bool(true)) {
            let _ = write!(s, r#"<p class="err">{} (p = {:.2e})</p>"#, esc(ctx.t("Sample ratio mismatch: the split differs from the weights; do not trust the results until the assignment is fixed.")), num(&srm, "p_value"));
        }
        s.push_str(&table(
            ctx,
            &[
                col(ctx.t("Variant"), "variant", Fmt::Text),
                col(ctx.t("Decision"), "decision", Fmt::Text),
                col(ctx.t("Reason"), "reason", Fmt::Text),
            ],
            list(&a, "verdicts"),
        ));
        let conf = num(&a, "confidence");
        out.push_str(&section(
            &format!("exp-{key}"),
            &format!("{} · {}", key, text(e, "name")),
            &format!(
                "{} {} {}",
                ctx.t("Relative lift against control with"),
                html::pct(conf),
                ctx.t("intervals; coloured when the interval excludes zero.")
            ),
            &s,
        ));
    }
    Ok(out)
}
