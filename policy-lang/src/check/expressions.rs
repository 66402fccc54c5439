//! Values checked against their destination: updates against the variable's range, the
//! value of a suppressed call against the import's result type. Expressions themselves
//! are lowered and typed by [`crate::lower`].
use crate::ast::{self, Span};
use crate::diag::{suggest, Diagnostic, Severity};
use crate::ir::{self, Expr, ValType};
use crate::lower::{fold_binary, Lowerer, Scope, Ty};
use std::collections::HashMap;

/// The scope of constant expressions: user constants (and the WASI ones), nothing else.
pub(super) fn const_scope(consts: &HashMap<String, i64>) -> Scope<'_> {
    Scope {
        event: None,
        event_name: "",
        set_name: None,
        set_params: &[],
        post: None,
        vars: &[],
        sets: &[],
        consts,
    }
}

/// A transition's updates as IR assignments (`x += e` becomes `x = x + e`) and set
/// updates (`s += e` inserts, `s -= e` removes); `None` when any is wrong, after
/// reporting every one that is.
pub(super) fn lower_updates(
    lw: &mut Lowerer,
    scope: &Scope,
    updates: &[ast::UpdateDecl],
    vars: &[ir::Var],
    sets: &[ir::SetVar],
) -> Option<(Vec<ir::Update>, Vec<ir::SetUpdate>)> {
    let mut out: Vec<ir::Update> = Vec::new();
    let mut set_updates: Vec<ir::SetUpdate> = Vec::new();
    let mut ok = true;
    for u in updates {
        if let Some(si) = sets.iter().position(|x| x.name == u.var.name) {
            let insert = match u.op {
                ast::UpdateOp::Add => true,
                ast::UpdateOp::Sub => false,
                ast::UpdateOp::Assign => {
                    lw_err(
                        lw,
                        u.span,
                        format!("set `{}` cannot be assigned", u.var.name),
                    )
                    .hint = Some(format!(
                        "add a member with `{0} += x`, remove one with `{0} -= x`",
                        u.var.name
                    ));
                    ok = false;
                    continue;
                }
            };
            match lw.typed(&u.value, scope, Ty::Int, "a set member") {
                Some(value) => set_updates.push(ir::SetUpdate {
                    set: si as u32,
                    insert,
                    value,
                }),
                None => ok = false,
            }
            continue;
        }
        let Some(vi) = vars.iter().position(|v| v.name == u.var.name) else {
            let hint = suggest(&u.var.name, vars.iter().map(|v| v.name.as_str()));
            let d = lw_err(lw, u.var.span, format!("unknown variable `{}`", u.var.name));
            d.hint = Some(match hint {
                Some(h) => format!("did you mean `{h}`?"),
                None => format!("declare it in the policy: `var {}: 0..10 = 0;`", u.var.name),
            });
            ok = false;
            continue;
        };
        if out.iter().any(|x| x.var == vi as ir::VarId) {
            lw_err(
                lw,
                u.var.span,
                format!(
                    "variable `{}` is updated twice in one transition",
                    u.var.name
                ),
            )
            .hint = Some("updates are simultaneous; combine them into one".into());
            ok = false;
            continue;
        }
        let Some(value) = lw.typed(&u.value, scope, Ty::Int, "an update value") else {
            ok = false;
            continue;
        };
        let var = Expr::Var(vi as ir::VarId);
        let value = match u.op {
            ast::UpdateOp::Assign => value,
            ast::UpdateOp::Add => fold_binary(ir::BinOp::Add, var, value),
            ast::UpdateOp::Sub => fold_binary(ir::BinOp::Sub, var, value),
        };
        let v = &vars[vi];
        if let Expr::Int(c) = value {
            if c < v.min || c > v.max {
                lw_err(
                    lw,
                    u.value.span,
                    format!(
                        "value {c} is outside the range {}..{} of `{}`",
                        v.min, v.max, v.name
                    ),
                );
                ok = false;
                continue;
            }
        }
        out.push(ir::Update {
            var: vi as ir::VarId,
            value,
        });
    }
    ok.then_some((out, set_updates))
}

/// The value a suppressed call returns, checked against the import's result type.
pub(super) fn suppress_value(
    lw: &mut Lowerer,
    consts: &HashMap<String, i64>,
    ev: &ir::Event,
    name: &str,
    value: Option<&ast::Expr>,
    span: Span,
) -> Option<Option<i64>> {
    match (ev.results.as_slice(), value) {
        ([], None) => Some(None),
        ([], Some(v)) => {
            lw_err(
                lw,
                v.span,
                format!("`{name}` has no result, so a suppressed call cannot return a value"),
            )
            .hint = Some("write `suppress` without a value".into());
            None
        }
        ([_], None) => {
            lw_err(
                lw,
                span,
                format!("`suppress` needs the value `{name}` returns instead"),
            )
            .hint = Some("e.g. `suppress ERRNO_ACCES \"reason\"`".into());
            None
        }
        ([ty], Some(v)) => {
            let c = lw.const_int(v, &const_scope(consts), "a suppress value")?;
            match ty {
                ValType::I32 => {
                    if !(i32::MIN as i64..=u32::MAX as i64).contains(&c) {
                        lw_err(
                            lw,
                            v.span,
                            format!("suppress value {c} does not fit the i32 result of `{name}`"),
                        );
                        return None;
                    }
                    // Stored as the i32 the caller sees, sign-extended like every i32.
                    Some(Some(c as i32 as i64))
                }
                ValType::I64 => Some(Some(c)),
                _ => {
                    lw_err(
                        lw,
                        span,
                        format!("cannot suppress `{name}`: its result is a float"),
                    );
                    None
                }
            }
        }
        _ => {
            lw_err(
                lw,
                span,
                format!("cannot suppress `{name}`: it has several results"),
            );
            None
        }
    }
}

pub(super) fn lw_err<'l>(lw: &'l mut Lowerer, span: Span, msg: String) -> &'l mut Diagnostic {
    lw.errors
        .push(Diagnostic::at(Severity::Error, lw.sources, span, msg));
    lw.errors.last_mut().expect("just pushed")
}
