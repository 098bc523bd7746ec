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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Hash,
    Ordered,
    /// An ordered table keyed by `cairn::Id<Value>`, ids allocated by the database.
    Auto,
}

struct TableInput {
    attrs: Vec<Attribute>,
    name: Ident,
    kind: Kind,
    key: Type,
    value: Type,
    indexes: Vec<IndexInput>,
}

/// `name: [unique] [ordered] Type = extractor`.
struct IndexInput {
    attrs: Vec<Attribute>,
    name: Ident,
    unique: bool,
    ordered: bool,
    key: Type,
    extract: syn::Expr,
}

impl Parse for IndexInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        // Modifiers before the type: `unique`, `ordered`, in any order (a word followed by `=` is the type).
        let (mut unique, mut ordered) = (false, false);
        while input.peek(Ident) && !input.peek2(Token![=]) {
            let fork = input.fork();
            let word = fork.parse::<Ident>()?;
            let flag = match word.to_string().as_str() {
                "unique" => &mut unique,
                "ordered" => &mut ordered,
                _ => break,
            };
            if *flag {
                return Err(syn::Error::new(word.span(), format!("`{word}` is written twice")));
            }
            *flag = true;
            input.parse::<Ident>()?;
        }
        let key: Type = input.parse()?;
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `= |value: &Value| ...`: an index is a function of the value, as in \
                 `by_email: unique String = |a: &Account| a.email.clone()`",
            )
        })?;
        let extract: syn::Expr = input.parse()?;
        Ok(IndexInput { attrs, name, unique, ordered, key, extract })
    }
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
            // A table renamed from a name another table now has would take that table's data on disk.
            for old in renamed_from(&t.attrs)?.1 {
                if let Some(other) = tables.iter().find(|u| u.name == old.as_str()) {
                    return Err(syn::Error::new(
                        other.name.span(),
                        format!(
                            "table `{}` was renamed from `{old}`, so the data on disk under `{old}` is its own; \
                             give this new table another name",
                            t.name
                        ),
                    ));
                }
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
                "auto" => Kind::Auto,
                other => {
                    return Err(syn::Error::new(
                        word.span(),
                        format!(
                            "unknown table kind `{other}`: write `<Key, Value>` (hash), `ordered<Key, Value>` or \
                             `auto<Value>` (keys are ids the database allocates)"
                        ),
                    ))
                }
            }
        };
        if kind == Kind::Auto {
            input.parse::<Token![<]>().map_err(|e| syn::Error::new(e.span(), "expected `auto<Value>`"))?;
            let value: Type = input.parse()?;
            input.parse::<Token![>]>().map_err(|e| syn::Error::new(e.span(), "expected `>` after the value type"))?;
            let key: Type = syn::parse_quote!(::cairn::Id<#value>);
            let indexes = parse_indexes(input)?;
            return Ok(TableInput { attrs, name, kind, key, value, indexes });
        }
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
        let indexes = parse_indexes(input)?;
        Ok(TableInput { attrs, name, kind, key, value, indexes })
    }
}

/// An optional `{ index, ... }` block after a table's types.
fn parse_indexes(input: ParseStream<'_>) -> syn::Result<Vec<IndexInput>> {
    if !input.peek(syn::token::Brace) {
        return Ok(Vec::new());
    }
    let body;
    braced!(body in input);
    let indexes: Vec<IndexInput> = Punctuated::<IndexInput, Token![,]>::parse_terminated(&body)?.into_iter().collect();
    for (i, ix) in indexes.iter().enumerate() {
        if indexes[..i].iter().any(|other| other.name == ix.name) {
            return Err(syn::Error::new(ix.name.span(), format!("index `{}` is declared twice", ix.name)));
        }
        if ix.name == "table" {
            return Err(syn::Error::new(
                ix.name.span(),
                "`table` is reserved for the table itself; name the index otherwise",
            ));
        }
    }
    Ok(indexes)
}

fn camel(name: &Ident) -> String {
    name.to_string()
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Splits a table's attributes into the ones passed on to its fields and the old names of
/// `#[renamed_from(old_name, ...)]`.
fn renamed_from(attrs: &[Attribute]) -> syn::Result<(Vec<Attribute>, Vec<String>)> {
    let mut kept = Vec::new();
    let mut old = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("renamed_from") {
            kept.push(attr.clone());
            continue;
        }
        let names =
            attr.parse_args_with(syn::punctuated::Punctuated::<Ident, Token![,]>::parse_terminated).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `#[renamed_from(old_name)]`: the table's earlier name(s), as identifiers",
                )
            })?;
        if names.is_empty() {
            return Err(syn::Error::new_spanned(attr, "`#[renamed_from(..)]` needs the table's earlier name"));
        }
        old.extend(names.iter().map(|n| n.to_string()));
    }
    Ok((kept, old))
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
    let mut extra = Vec::new();
    for (pos, t) in tables.iter().enumerate() {
        let TableInput { attrs, name: field, kind, key, value, indexes } = t;
        let table_name = field.to_string();
        let (attrs, old_names) = match renamed_from(attrs) {
            Ok(split) => split,
            Err(e) => return e.to_compile_error(),
        };
        let (handle, txn_handle, read_handle, def, txn_new) = match kind {
            Kind::Hash => (quote!(Table), quote!(TxnTable), quote!(TableRead), quote!(hash), quote!(__new)),
            Kind::Ordered | Kind::Auto => (
                quote!(OrderedTable),
                quote!(TxnOrderedTable),
                quote!(OrderedTableRead),
                quote!(ordered),
                quote!(__new_ordered),
            ),
        };
        let index_defs = indexes.iter().map(|ix| {
            let IndexInput { name, unique, ordered, key: ik, extract, .. } = ix;
            let ctor = if *unique { quote!(unique) } else { quote!(multi) };
            let index_name = name.to_string();
            quote!(#cairn::IndexDef::<#key, #value>::#ctor::<#ik>(#index_name, #ordered, #extract))
        });
        defs.push(quote!(
            #cairn::TableDef::#def::<#key, #value>(#table_name, ::std::vec![#(#index_defs),*])
                .renamed_from(&[#(#old_names),*])
        ));
        if indexes.is_empty() {
            fields.push(quote!(#(#attrs)* pub #field: #cairn::#handle<#key, #value>));
            txn_fields.push(quote!(#(#attrs)* pub #field: #cairn::#txn_handle<'t, #key, #value>));
            read_fields.push(quote!(#(#attrs)* pub #field: #cairn::#read_handle<'r, #key, #value>));
            inits.push(quote!(#field: db.__table(#pos)));
            txn_inits.push(quote!(#field: #cairn::#txn_handle::__new(tx, #pos)));
            read_inits.push(quote!(#field: #cairn::#read_handle::__new(state, #pos)));
            continue;
        }
        // A table with indexes: a struct per view that derefs to the table and holds one handle per index.
        let base = format!("{name}{}", camel(field));
        let (ty, txn_ty, read_ty) =
            (format_ident!("{}", base), format_ident!("{}Txn", base), format_ident!("{}Read", base));
        let (mut ix_fields, mut ix_txn_fields, mut ix_read_fields) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ix_inits, mut ix_txn_inits, mut ix_read_inits) = (Vec::new(), Vec::new(), Vec::new());
        for (i, ix) in indexes.iter().enumerate() {
            let IndexInput { attrs: ix_attrs, name: ix_name, unique, key: ik, .. } = ix;
            let (h, th, rh) = if *unique {
                (quote!(UniqueIndex), quote!(TxnUniqueIndex), quote!(UniqueIndexRead))
            } else {
                (quote!(Index), quote!(TxnIndex), quote!(IndexRead))
            };
            ix_fields.push(quote!(#(#ix_attrs)* pub #ix_name: #cairn::#h<#key, #value, #ik>));
            ix_txn_fields.push(quote!(#(#ix_attrs)* pub #ix_name: #cairn::#th<'t, #key, #value, #ik>));
            ix_read_fields.push(quote!(#(#ix_attrs)* pub #ix_name: #cairn::#rh<'r, #key, #value, #ik>));
            ix_inits.push(quote!(#ix_name: #cairn::#h::__new(&db, #pos, #i)));
            ix_txn_inits.push(quote!(#ix_name: #cairn::#th::#txn_new(&table, #i)));
            ix_read_inits.push(quote!(#ix_name: #cairn::#rh::__new(state, #pos, #i)));
        }
        let doc = format!("Table `{field}` of [`{name}`] with its indexes; derefs to the table.");
        let txn_doc = format!("Table `{field}` of [`{name}`] with its indexes, in a transaction; derefs to the table.");
        let read_doc = format!("Table `{field}` of [`{name}`] with its indexes, in a read view; derefs to the table.");
        extra.push(quote! {
            #[doc = #doc]
            #vis struct #ty {
                table: #cairn::#handle<#key, #value>,
                #(#ix_fields,)*
            }

            impl ::std::ops::Deref for #ty {
                type Target = #cairn::#handle<#key, #value>;
                fn deref(&self) -> &Self::Target {
                    &self.table
                }
            }

            impl ::std::fmt::Debug for #ty {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    ::std::fmt::Debug::fmt(&self.table, f)
                }
            }

            #[doc = #txn_doc]
            #vis struct #txn_ty<'t> {
                table: #cairn::#txn_handle<'t, #key, #value>,
                #(#ix_txn_fields,)*
            }

            impl<'t> ::std::ops::Deref for #txn_ty<'t> {
                type Target = #cairn::#txn_handle<'t, #key, #value>;
                fn deref(&self) -> &Self::Target {
                    &self.table
                }
            }

            #[doc = #read_doc]
            #vis struct #read_ty<'r> {
                table: #cairn::#read_handle<'r, #key, #value>,
                #(#ix_read_fields,)*
            }

            impl<'r> ::std::ops::Deref for #read_ty<'r> {
                type Target = #cairn::#read_handle<'r, #key, #value>;
                fn deref(&self) -> &Self::Target {
                    &self.table
                }
            }
        });
        fields.push(quote!(#(#attrs)* pub #field: #ty));
        txn_fields.push(quote!(#(#attrs)* pub #field: #txn_ty<'t>));
        read_fields.push(quote!(#(#attrs)* pub #field: #read_ty<'r>));
        inits.push(quote!(#field: #ty { table: db.__table(#pos), #(#ix_inits,)* }));
        txn_inits.push(quote!(#field: {
            let table = #cairn::#txn_handle::__new(tx, #pos);
            #txn_ty { #(#ix_txn_inits,)* table }
        }));
        read_inits
            .push(quote!(#field: #read_ty { table: #cairn::#read_handle::__new(state, #pos), #(#ix_read_inits,)* }));
    }
    let txn_doc = format!("The tables of [`{name}`] inside a transaction (see [`{name}::transaction`]).");
    let read_doc = format!("The tables of [`{name}`] at one consistent state (see [`{name}::read`]).");
    let lifetime_t = syn::Lifetime::new("'t", Span::call_site());
    quote! {
        #(#extra)*

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

            /// Writes a consistent copy of the database into directory `dir` while readers and writers go on; the
            /// copy is an ordinary database directory holding the state after one commit. See
            /// [`Db::backup_to`](::cairn::Db::backup_to).
            #vis fn backup_to(&self, dir: impl ::std::convert::AsRef<::std::path::Path>) -> #cairn::Result<#cairn::Backup> {
                self.db.backup_to(dir)
            }

            /// Re-encrypts the whole database under `new`, crash-safe; afterwards only `new` opens it. See
            /// [`Db::rotate_key`](::cairn::Db::rotate_key).
            #vis fn rotate_key(&self, new: #cairn::EncryptionKey) -> #cairn::Result<()> {
                self.db.rotate_key(new)
            }

            /// Subscribes to every committed transaction from now on, across all tables. See
            /// [`Db::subscribe`](::cairn::Db::subscribe).
            #vis fn subscribe(&self) -> #cairn::Subscription<#cairn::Commit> {
                self.db.subscribe()
            }

            /// Subscribes to every committed transaction after sequence number `seq`, read back from the log while
            /// it holds them. See [`Db::subscribe_from`](::cairn::Db::subscribe_from).
            #vis fn subscribe_from(&self, seq: u64) -> #cairn::Subscription<#cairn::Commit> {
                self.db.subscribe_from(seq)
            }

            /// The database handle: path, sequence number, tables on disk that the schema does not declare.
            #vis fn db(&self) -> &#cairn::Db {
                &self.db
            }
        }
    }
}
