//! The demo company: what `jobers demo` creates (once) so that a first run shows a working
//! workspace without any setup.

use crate::auth::AuthService;
use crate::store::{Db, NewUser, Role, StoreError};

pub const DEMO_TENANT: &str = "demo";
/// Every demo user's password. Demo data only: the README lists it.
pub const DEMO_PASSWORD: &str = "jobers-demo";

pub struct DemoLogin {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
}

pub const DEMO_USERS: &[DemoLogin] = &[
    DemoLogin {
        email: "admin@demo.jobers.local",
        name: "Анна Админова",
        role: Role::Admin,
    },
    DemoLogin {
        email: "supervisor@demo.jobers.local",
        name: "Сергей Руководов",
        role: Role::Supervisor,
    },
    DemoLogin {
        email: "olga@demo.jobers.local",
        name: "Ольга Подборова",
        role: Role::Recruiter,
    },
    DemoLogin {
        email: "ivan@demo.jobers.local",
        name: "Иван Наймов",
        role: Role::Recruiter,
    },
];

/// Creates the demo tenant, its departments and users when they do not exist yet.
pub async fn seed(db: &Db, auth: &AuthService) -> anyhow::Result<&'static [DemoLogin]> {
    let tenant = match db.tenant_by_slug(DEMO_TENANT).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => db.create_tenant(DEMO_TENANT, "Демо: ООО «Джоберс»").await?,
        Err(e) => return Err(e.into()),
    };
    let tdb = db.for_tenant(&tenant.id);
    let mut departments = tdb.list_departments().await?;
    if departments.is_empty() {
        for name in ["Подбор персонала", "Продажи"] {
            departments.push(tdb.create_department(name).await?);
        }
    }
    let hash = auth.hasher().hash(DEMO_PASSWORD).await?;
    for (i, login) in DEMO_USERS.iter().enumerate() {
        match tdb.credentials_by_email(login.email).await {
            Ok(_) => continue,
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        tdb.create_user(NewUser {
            email: login.email.into(),
            name: login.name.into(),
            role: login.role,
            department_id: departments.get(i % departments.len()).map(|d| d.id.clone()),
            phone: None,
            title: None,
            password_hash: hash.clone(),
        })
        .await?;
    }
    Ok(DEMO_USERS)
}

pub fn print_banner(url: &str, logins: &[DemoLogin]) {
    println!();
    println!("  Jobers demo is running at {url}");
    println!("  API description: {url}/api/v1/openapi.json");
    println!("  Company (tenant): {DEMO_TENANT}    password for every user: {DEMO_PASSWORD}");
    for l in logins {
        println!("    {:<11} {}", l.role.as_str(), l.email);
    }
    println!("  Stop with Ctrl-C.");
    println!();
}
