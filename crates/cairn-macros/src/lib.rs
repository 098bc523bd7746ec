//! The `schema!` macro of Cairn. Use it through `cairn::schema!`; its documentation lives there.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, Attribute, Ident, Token, Type, Visibility};

/// Declares a schema: a struct with one typed table per field. See `cairn::schema!`.
#[proc_macro]
pub fn schema(input: TokenStream) -> TokenStream {
    match syn::parse::<SchemaInput>(input) {
        Ok(schema) => expand(&schema).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

struct SchemaInput {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    tables: Vec<TableInput>,
}

enum Kind {
    Hash,
    Ordered,
}

struct TableInput {
    attrs: Vec<Attribute>,
    name: Ident,
    kind: Kind,
    key: Type,
    value: Type,
}

impl Parse for SchemaInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        let body;
        braced!(body in input);
        let tables = Punctuated::<TableInput, Token![,]>::parse_terminated(&body)?;
        let tables: Vec<TableInput> = tables.into_iter().collect();
        if tables.is_empty() {
            return Err(syn::Error::new(
                name.span(),
                "a schema needs at least one table, as in `accounts: <Username, Account>`",
            ));
        }
        for (i, t) in tables.iter().enumerate() {
            if tables[..i].iter().any(|u| u.name == t.name) {
                return Err(syn::Error::new(t.name.span(), format!("table `{}` is declared twice", t.name)));
            }
            if t.name == "db" {
                return Err(syn::Error::new(
                    t.name.span(),
                    "`db` is reserved for the database handle; name the table otherwise",
                ));
            }
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the schema's closing brace"));
        }
        Ok(SchemaInput { attrs, vis, name, tables })
    }
}

impl Parse for TableInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let kind = if input.peek(Token![<]) {
            Kind::Hash
        } else {
            let word: Ident = input.parse()?;
            match word.to_string().as_str() {
                "hash" => Kind::Hash,
                "ordered" => Kind::Ordered,
                other => {
                    return Err(syn::Error::new(
                        word.span(),
                        format!("unknown table kind `{other}`: write `<Key, Value>` (hash) or `ordered<Key, Value>`"),
                    ))
                }
            }
        };
        let open: Token![<] = input.parse().map_err(|e| syn::Error::new(e.span(), "expected `<Key, Value>`"))?;
        let key: Type = input.parse()?;
        if !input.peek(Token![,]) {
            return Err(syn::Error::new(
                open.span,
                "expected `<Key, Value>`: a table needs a key type and a value type",
            ));
        }
        input.parse::<Token![,]>()?;
        let value: Type = input.parse()?;
        input.parse::<Token![>]>().map_err(|e| syn::Error::new(e.span(), "expected `>` after the value type"))?;
        Ok(TableInput { attrs, name, kind, key, value })
    }
}

fn expand(s: &SchemaInput) -> TokenStream2 {
    let SchemaInput { attrs, vis, name, tables } = s;
    let txn = format_ident!("{}Txn", name);
    let read = format_ident!("{}Read", name);
    let cairn = quote!(::cairn);
    let mut fields = Vec::new();
    let mut txn_fields = Vec::new();
    let mut read_fields = Vec::new();
    let mut defs = Vec::new();
    let mut inits = Vec::new();
    let mut txn_inits = Vec::new();
    let mut read_inits = Vec::new();
    for (pos, t) in tables.iter().enumerate() {
        let TableInput { attrs, name: field, kind, key, value } = t;
        let table_name = field.to_string();
        let (handle, txn_handle, read_handle, def) = match kind {
            Kind::Hash => (quote!(Table), quote!(TxnTable), quote!(TableRead), quote!(hash)),
            Kind::Ordered => (quote!(OrderedTable), quote!(TxnOrderedTable), quote!(OrderedTableRead), quote!(ordered)),
        };
        fields.push(quote!(#(#attrs)* pub #field: #cairn::#handle<#key, #value>));
        txn_fields.push(quote!(#(#attrs)* pub #field: #cairn::#txn_handle<'t, #key, #value>));
        read_fields.push(quote!(#(#attrs)* pub #field: #cairn::#read_handle<'r, #key, #value>));
        defs.push(quote!(#cairn::TableDef::#def::<#key, #value>(#table_name)));
        inits.push(quote!(#field: db.__table(#pos)));
        txn_inits.push(quote!(#field: #cairn::#txn_handle::__new(tx, #pos)));
        read_inits.push(quote!(#field: #cairn::#read_handle::__new(state, #pos)));
    }
    let txn_doc = format!("The tables of [`{name}`] inside a transaction (see [`{name}::transaction`]).");
    let read_doc = format!("The tables of [`{name}`] at one consistent state (see [`{name}::read`]).");
    let lifetime_t = syn::Lifetime::new("'t", Span::call_site());
    quote! {
        #(#attrs)*
        #vis struct #name {
            #(#fields,)*
            db: #cairn::Db,
        }

        #[doc = #txn_doc]
        #vis struct #txn<#lifetime_t> {
            #(#txn_fields,)*
        }

        #[doc = #read_doc]
        #vis struct #read<'r> {
            #(#read_fields,)*
        }

        impl #cairn::Schema for #name {
            fn tables() -> ::std::vec::Vec<#cairn::TableDef> {
                ::std::vec![#(#defs),*]
            }

            fn from_db(db: #cairn::Db) -> Self {
                #name { #(#inits,)* db }
            }
        }

        impl ::std::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&self.db, f)
            }
        }

        #[allow(dead_code)]
        impl #name {
            /// Opens (or creates) the database in directory `path` with the default options.
            #vis fn open(path: impl ::std::convert::AsRef<::std::path::Path>) -> #cairn::Result<Self> {
                #cairn::Builder::<Self>::new().open(path)
            }

            /// A builder for opening the database with options.
            #vis fn builder() -> #cairn::Builder<Self> {
                #cairn::Builder::new()
            }

            /// Runs `f` as one serializable transaction over all tables. `f` reads its own writes; if it returns
            /// `Err` or panics nothing is written; if it returns `Ok` everything it wrote commits atomically, durable
            /// per the database's durability when this returns.
            #vis fn transaction<R, E>(
                &self,
                f: impl ::std::ops::FnOnce(&#txn<'_>) -> ::std::result::Result<R, E>,
            ) -> ::std::result::Result<R, E>
            where
                E: ::std::convert::From<#cairn::Error>,
            {
                self.db.__transaction(::std::option::Option::None, |tx| f(&#txn { #(#txn_inits,)* }))
            }

            /// Like [`Self::transaction`], with the durability of this one commit chosen here.
            #vis fn transaction_with<R, E>(
                &self,
                durability: #cairn::Durability,
                f: impl ::std::ops::FnOnce(&#txn<'_>) -> ::std::result::Result<R, E>,
            ) -> ::std::result::Result<R, E>
            where
                E: ::std::convert::From<#cairn::Error>,
            {
                self.db.__transaction(::std::option::Option::Some(durability), |tx| f(&#txn { #(#txn_inits,)* }))
            }

            /// Lends every table at one consistent state to `f`: never half of a transaction.
            #vis fn read<R>(&self, f: impl ::std::ops::FnOnce(&#read<'_>) -> R) -> R {
                self.db.__read(|state| f(&#read { #(#read_inits,)* }))
            }

            /// Folds the log into a new snapshot now (it also happens in the background as the log grows).
            #vis fn compact(&self) -> #cairn::Result<()> {
                self.db.compact()
            }

            /// The database handle: path, sequence number, tables on disk that the schema does not declare.
            #vis fn db(&self) -> &#cairn::Db {
                &self.db
            }
        }
    }
}
