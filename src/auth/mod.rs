//! The authorization service (R-AUTH): passwords, access and refresh tokens, login with
//! brute-force protection, and the [`Principal`] every authenticated request carries.

pub mod password;
pub mod service;
mod tokens;

pub use password::PasswordHasher;
pub use service::{AuthService, LoginRequest, TokenPair};
pub use tokens::AccessClaims;

use crate::store::Role;

/// An authenticated staff member. Only this module constructs one, after checking the
/// token and that its session and user are still live; the store scopes every tenant query
/// by it.
#[derive(Debug, Clone)]
pub struct Principal {
    tenant_id: String,
    user_id: String,
    session_id: String,
    role: Role,
}

impl Principal {
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn session_id(&self) -> &str {
        &self.session_id
    }
    pub fn role(&self) -> Role {
        self.role
    }

    /// Admins may do everything; supervisors what supervisors and recruiters may.
    pub fn has_role(&self, least: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Recruiter => 0,
            Role::Supervisor => 1,
            Role::Admin => 2,
        };
        rank(self.role) >= rank(least)
    }

    pub fn require(&self, least: Role) -> Result<(), crate::error::ApiError> {
        if self.has_role(least) {
            Ok(())
        } else {
            Err(crate::error::ApiError::forbidden(format!(
                "this needs the {} role",
                least.as_str()
            )))
        }
    }
}
