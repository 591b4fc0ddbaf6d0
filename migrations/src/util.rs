//! Column, table and index shorthands shared by every migration, so each
//! migration file reads as its schema and nothing else.
use sea_orm_migration::prelude::*;

/// A column with only its name set; the caller adds the type.
pub fn col(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}
pub fn text(name: &'static str) -> ColumnDef {
    col(name).text().not_null().to_owned()
}
pub fn text_null(name: &'static str) -> ColumnDef {
    col(name).text().null().to_owned()
}
pub fn string_pk(name: &'static str) -> ColumnDef {
    col(name).string_len(128).not_null().primary_key().to_owned()
}
/// Integers and Unix-second timestamps.
pub fn big(name: &'static str) -> ColumnDef {
    col(name).big_integer().not_null().to_owned()
}
pub fn big_null(name: &'static str) -> ColumnDef {
    col(name).big_integer().null().to_owned()
}
pub fn flag(name: &'static str) -> ColumnDef {
    col(name).boolean().not_null().default(false).to_owned()
}
pub fn table(name: &'static str, cols: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name)).if_not_exists();
    for mut c in cols {
        t.col(&mut c);
    }
    t.to_owned()
}
pub fn index(table: &'static str, name: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(Alias::new(table)).if_not_exists();
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}
/// `<table>.user_id` → `users.id`, deleted with the account.
pub fn owner(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new(table), Alias::new("user_id"))
        .to(Alias::new("users"), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
