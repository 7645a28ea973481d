//! The attribute macros of `eddy-udf`: `#[scalar]` and `#[filter]` turn a
//! plain Rust function into a batch entry point of Eddy's UDF ABI v1 plus a
//! self-description, leaving the function itself untouched (so it can be
//! unit-tested natively). See the `eddy-udf` crate for the user guide.

use eddy_udf_abi::{AGG_PREFIX, CALL_PREFIX, DESCRIBE_PREFIX};
use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::{FnArg, ItemFn, Pat, ReturnType, Type, spanned::Spanned};

/// A scalar function: `#[eddy_udf::scalar] fn f(a: f64, b: &str) -> f64`.
/// Arguments: `i64`, `f64`, `bool`, `&str`, `Option<..>`; result: `i64`,
/// `f64`, `bool`, `String`, `Option<..>`.
#[proc_macro_attribute]
pub fn scalar(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Scalar)
}

/// A filter: `#[eddy_udf::filter] fn in_region(lat: f64, lon: f64) -> bool`;
/// rows for which it returns `false` (or that have a NULL in a non-`Option`
/// argument) are dropped.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Filter)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Scalar,
    Filter,
}

fn error(span: Span, message: &str) -> TokenStream {
    syn::Error::new(span, message).to_compile_error().into()
}

fn expand(attr: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let macro_name = if kind == Kind::Scalar {
        "scalar"
    } else {
        "filter"
    };
    if !attr.is_empty() {
        return error(
            Span::call_site(),
            &format!(
                "#[eddy_udf::{macro_name}] takes no arguments; the SQL name is the function's name"
            ),
        );
    }
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => {
            return error(
                e.span(),
                &format!(
                    "#[eddy_udf::{macro_name}] goes on a function: fn name(a: f64, ...) -> ..."
                ),
            );
        }
    };
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return error(
            sig.generics.span(),
            "a UDF cannot be generic: SQL calls it with concrete types (i64, f64, bool, &str)",
        );
    }
    if sig.asyncness.is_some() || sig.constness.is_some() || sig.unsafety.is_some() {
        return error(
            sig.fn_token.span(),
            "a UDF must be a plain `fn` (not async, const or unsafe)",
        );
    }
    if sig.variadic.is_some() {
        return error(sig.span(), "a UDF cannot be variadic");
    }
    let name = &sig.ident;
    let sql_name = name.to_string();
    if sql_name.starts_with('_') || sql_name.len() > 64 {
        return error(
            name.span(),
            "a UDF name must not start with `_` and has at most 64 characters",
        );
    }
    let mut arg_types: Vec<Type> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return error(
                    r.span(),
                    "a UDF is a free function, not a method (no `self`)",
                );
            }
            FnArg::Typed(t) => {
                if !matches!(t.pat.as_ref(), Pat::Ident(_) | Pat::Wild(_)) {
                    return error(
                        t.pat.span(),
                        "name each UDF argument (patterns are not supported)",
                    );
                }
                arg_types.push(erase_lifetimes(&t.ty));
            }
        }
    }
    if arg_types.is_empty() {
        return error(
            sig.inputs.span(),
            "a UDF takes at least one argument (a column)",
        );
    }
    let ret: Type = match &sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => {
            return error(
                sig.span(),
                if kind == Kind::Filter {
                    "a filter returns bool: fn name(...) -> bool"
                } else {
                    "a scalar UDF returns a value: fn name(...) -> f64 (or i64, bool, String, Option<..>)"
                },
            );
        }
    };
    let call_export = format!("{CALL_PREFIX}{sql_name}");
    let describe_export = format!("{DESCRIBE_PREFIX}{sql_name}");
    let idx: Vec<syn::Index> = (0..arg_types.len()).map(syn::Index::from).collect();
    let vars: Vec<syn::Ident> = (0..arg_types.len())
        .map(|i| format_ident!("__a{i}"))
        .collect();
    let rt = quote!(::eddy_udf::__rt);
    let (on_null, on_value, kind_text, ret_sql) = match kind {
        Kind::Scalar => (
            quote!(__out.null(<#ret as #rt::RetType>::SQL)),
            quote!(#rt::RetType::write(#name(#(#vars),*), __out)),
            "scalar",
            quote!(Some(<#ret as #rt::RetType>::SQL)),
        ),
        Kind::Filter => (
            quote!(#rt::pass(__out, false)),
            quote!(#rt::pass(__out, #rt::FilterRet::pass(#name(#(#vars),*)))),
            "filter",
            quote!(Some(#rt::SqlType::Boolean)),
        ),
    };
    let row_closure = quote! {
        |__cols, __i, __out| {
            #(
                let #vars = match <#arg_types as #rt::ArgType>::read(&__cols[#idx], __i) {
                    Ok(v) => v,
                    Err(_) => {
                        #on_null;
                        return;
                    }
                };
            )*
            #on_value;
        }
    };
    let body = match kind {
        Kind::Scalar => quote! {
            #rt::call(__args, __rows, &[#(<#arg_types as #rt::ArgType>::SQL),*], #row_closure)
        },
        Kind::Filter => quote! {
            #rt::call_filter(
                __args,
                __rows,
                &[#(<#arg_types as #rt::ArgType>::SQL),*],
                &[#(<#arg_types as #rt::ArgType>::NULLABLE),*],
                #row_closure,
                #[inline(always)]
                |__w: &[&[u64]], __i: usize| -> bool {
                    #(
                        let Some(#vars) = <#arg_types as #rt::ArgType>::from_word(__w[#idx][__i]) else {
                            return false;
                        };
                    )*
                    #rt::FilterRet::pass(#name(#(#vars),*))
                },
            )
        },
    };
    let expanded = quote! {
        #func

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(export_name = #call_export)]
            extern "C" fn __eddy_call(__args: u32, __rows: u32) -> i32 {
                #body
            }

            #[unsafe(export_name = #describe_export)]
            extern "C" fn __eddy_describe() -> u64 {
                #rt::describe(
                    #sql_name,
                    #kind_text,
                    &[#((<#arg_types as #rt::ArgType>::SQL, <#arg_types as #rt::ArgType>::NULLABLE)),*],
                    #ret_sql,
                )
            }
        };
    };
    expanded.into()
}

/// `&'a str` → `&str`, so the type can be named inside the generated closure.
fn erase_lifetimes(ty: &Type) -> Type {
    match ty {
        Type::Reference(r) => {
            let mut r = r.clone();
            r.lifetime = None;
            r.elem = Box::new(erase_lifetimes(&r.elem));
            Type::Reference(r)
        }
        other => other.clone(),
    }
}

/// An aggregate: on `impl eddy_udf::Aggregate for T { ... }`. The SQL name is
/// `T` in snake case, or `#[eddy_udf::aggregate(name = "p90")]`.
#[proc_macro_attribute]
pub fn aggregate(attr: TokenStream, item: TokenStream) -> TokenStream {
    let block = match syn::parse::<syn::ItemImpl>(item) {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.span(),
                "#[eddy_udf::aggregate] goes on `impl eddy_udf::Aggregate for YourType { ... }`",
            );
        }
    };
    let is_aggregate = block
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|s| s.ident == "Aggregate");
    if !is_aggregate {
        return error(
            block.self_ty.span(),
            "#[eddy_udf::aggregate] goes on an `impl eddy_udf::Aggregate for YourType` block",
        );
    }
    if !block.generics.params.is_empty() {
        return error(block.generics.span(), "an aggregate type cannot be generic");
    }
    let ty = &block.self_ty;
    let Type::Path(path) = ty.as_ref() else {
        return error(ty.span(), "implement Aggregate for a named type (a struct)");
    };
    let Some(last) = path.path.segments.last() else {
        return error(ty.span(), "implement Aggregate for a named type (a struct)");
    };
    let mut sql_name = snake_case(&last.ident.to_string());
    if !attr.is_empty() {
        let parsed = syn::parse::<syn::MetaNameValue>(attr);
        match parsed {
            Ok(nv) if nv.path.is_ident("name") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => sql_name = s.value(),
                other => return error(other.span(), "write name = \"p90\""),
            },
            _ => {
                return error(
                    Span::call_site(),
                    "#[eddy_udf::aggregate] takes only name = \"...\"",
                );
            }
        }
    }
    if sql_name.is_empty()
        || sql_name.starts_with('_')
        || !sql_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return error(
            Span::call_site(),
            "an aggregate's SQL name uses letters, digits and _ and does not start with _",
        );
    }
    let rt = quote!(::eddy_udf::__rt);
    let export = |op: &str| format!("{AGG_PREFIX}{op}_{sql_name}");
    let slide = export("slide");
    let (describe, new, drop, update, merge, finish, state, clear) = (
        format!("{DESCRIBE_PREFIX}{sql_name}"),
        export("new"),
        export("drop"),
        export("update"),
        export("merge"),
        export("finish"),
        export("state"),
        export("clear"),
    );
    quote! {
        #block

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(export_name = #describe)]
            extern "C" fn __describe() -> u64 { #rt::describe_aggregate::<#ty>(#sql_name) }
            #[unsafe(export_name = #new)]
            extern "C" fn __new() -> u32 { #rt::agg_new::<#ty>() }
            #[unsafe(export_name = #drop)]
            extern "C" fn __drop(h: u32) { #rt::agg_drop::<#ty>(h) }
            #[unsafe(export_name = #update)]
            extern "C" fn __update(h: u32, args: u32, rows: u32, groups: u32, n: u32) -> i32 {
                #rt::agg_update::<#ty>(h, args, rows, groups, n)
            }
            #[unsafe(export_name = #merge)]
            extern "C" fn __merge(h: u32, states: u32, rows: u32, groups: u32, n: u32) -> i32 {
                #rt::agg_merge::<#ty>(h, states, rows, groups, n)
            }
            #[unsafe(export_name = #finish)]
            extern "C" fn __finish(h: u32, groups: u32, n: u32) -> i32 {
                #rt::agg_finish::<#ty>(h, groups, n)
            }
            #[unsafe(export_name = #state)]
            extern "C" fn __state(h: u32, n: u32) -> i32 { #rt::agg_state::<#ty>(h, n) }
            #[unsafe(export_name = #clear)]
            extern "C" fn __clear(h: u32) { #rt::agg_clear::<#ty>(h) }
            #[unsafe(export_name = #slide)]
            extern "C" fn __slide(h: u32, args: u32, rows: u32, ops: u32, n: u32) -> i32 {
                #rt::agg_slide::<#ty>(h, args, rows, ops, n)
            }
        };
    }
    .into()
}

/// `WeightedAvg` → `weighted_avg`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
