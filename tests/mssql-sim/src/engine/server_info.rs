//! What an instance says about itself: `@@VERSION`, `@@SERVERNAME` and `SERVERPROPERTY`.

use crate::config::{Edition, InstanceConfig, Platform, ProductVersion};
use crate::reply::{SqlType, Value};

/// Identity of an instance, fixed at start.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub platform: Platform,
    pub edition: Edition,
    pub version: ProductVersion,
    pub machine_name: String,
    pub instance_name: Option<String>,
    pub time_zone_minutes: i32,
}

impl ServerInfo {
    pub fn from_config(config: &InstanceConfig) -> ServerInfo {
        ServerInfo {
            platform: config.platform,
            edition: config.edition,
            version: config.version,
            machine_name: config
                .machine_name
                .clone()
                .unwrap_or_else(|| machine_name_from(&config.name)),
            instance_name: config.instance_name.clone(),
            time_zone_minutes: config.time_zone_minutes,
        }
    }

    /// `@@SERVERNAME`: `MACHINE` for a default instance, `MACHINE\INSTANCE` for a named one.
    pub fn server_name(&self) -> String {
        match &self.instance_name {
            Some(instance) => format!("{}\\{}", self.machine_name, instance),
            None => self.machine_name.clone(),
        }
    }

    /// `SERVERPROPERTY('Edition')`, e.g. "Enterprise Edition (64-bit)". SQL Server
    /// reports "Enterprise Edition: Core-based Licensing (64-bit)" for core-licensed
    /// installs; the simulator plays the plain form.
    pub fn edition_text(&self) -> &'static str {
        match self.edition {
            Edition::Enterprise => "Enterprise Edition (64-bit)",
            Edition::Standard => "Standard Edition (64-bit)",
            Edition::Developer => "Developer Edition (64-bit)",
            Edition::Express => "Express Edition (64-bit)",
        }
    }

    /// `SERVERPROPERTY('EngineEdition')`: 2 Standard, 3 Enterprise (and Developer),
    /// 4 Express (SERVERPROPERTY (Transact-SQL)).
    pub fn engine_edition(&self) -> i64 {
        match self.edition {
            Edition::Standard => 2,
            Edition::Enterprise | Edition::Developer => 3,
            Edition::Express => 4,
        }
    }

    /// `SERVERPROPERTY('EditionID')` values from SERVERPROPERTY (Transact-SQL).
    fn edition_id(&self) -> i64 {
        match self.edition {
            Edition::Enterprise => 1_804_890_536,
            Edition::Standard => -1_534_726_760,
            Edition::Developer => -2_117_995_310,
            Edition::Express => -1_592_396_055,
        }
    }

    /// Product year of the major version: 16 is SQL Server 2022.
    fn product_year(&self) -> &'static str {
        match self.version.major {
            11 => "2012",
            12 => "2014",
            13 => "2016",
            14 => "2017",
            15 => "2019",
            17 => "2025",
            _ => "2022",
        }
    }

    /// `DatabaseVersion` of databases on this version (the internal format number that
    /// RESTORE HEADERONLY shows).
    pub fn database_version(&self) -> u16 {
        match self.version.major {
            11 => 706,
            12 => 782,
            13 => 852,
            14 => 869,
            15 => 904,
            17 => 998,
            _ => 957,
        }
    }

    /// Highest compatibility level of the version: 160 for SQL Server 2022.
    pub fn compatibility_level(&self) -> u8 {
        self.version.major.saturating_mul(10)
    }

    /// `@@VERSION` in SQL Server's layout: product line, build date, copyright, then the
    /// edition and the operating system (on Windows with its build, on Linux with the
    /// distribution).
    // NOTE: the build date and operating system builds are fixed plausible values, not
    // the ones Microsoft shipped with each build.
    pub fn version_text(&self) -> String {
        let year = self.product_year();
        let os = match self.platform {
            Platform::Windows => match self.version.major {
                0..=13 => "Windows Server 2016 Standard 10.0 <X64> (Build 14393: ) (Hypervisor)",
                14 | 15 => "Windows Server 2019 Standard 10.0 <X64> (Build 17763: ) (Hypervisor)",
                _ => "Windows Server 2022 Standard 10.0 <X64> (Build 20348: ) (Hypervisor)",
            },
            Platform::Linux => match self.version.major {
                0..=14 => "Linux (Ubuntu 16.04.7 LTS) <X64>",
                15 => "Linux (Ubuntu 20.04.6 LTS) <X64>",
                _ => "Linux (Ubuntu 22.04.4 LTS) <X64>",
            },
        };
        format!(
            "Microsoft SQL Server {year} (RTM) - {} (X64) \n\tJan 25 2024 11:39:27 \n\tCopyright (C) \
             {year} Microsoft Corporation\n\t{} on {os}\n",
            self.version,
            self.edition_text()
        )
    }

    /// `SERVERPROPERTY(name)` with the base type of its sql_variant; unknown names are
    /// NULL, as in SQL Server.
    pub fn property(&self, name: &str) -> (Value, SqlType) {
        let text = |value: String| (Value::Str(value), SqlType::NVarChar(Some(128)));
        let int = |value: i64| (Value::Int(value), SqlType::Int);
        match name.to_ascii_lowercase().as_str() {
            "productversion" => text(self.version.to_string()),
            "productmajorversion" => text(self.version.major.to_string()),
            "productminorversion" => text(self.version.minor.to_string()),
            "productbuild" => text(self.version.build.to_string()),
            "productlevel" => text("RTM".into()),
            "edition" => text(self.edition_text().into()),
            "engineedition" => int(self.engine_edition()),
            "editionid" => (Value::Int(self.edition_id()), SqlType::BigInt),
            "machinename" | "computernamephysicalnetbios" => text(self.machine_name.clone()),
            "servername" => text(self.server_name()),
            "instancename" => match &self.instance_name {
                Some(instance) => text(instance.clone()),
                None => (Value::Null, SqlType::NVarChar(Some(128))),
            },
            "collation" => text("SQL_Latin1_General_CP1_CI_AS".into()),
            "isclustered" | "ishadrenabled" | "isintegratedsecurityonly" | "issingleuser" => int(0),
            _ => (Value::Null, SqlType::NVarChar(Some(128))),
        }
    }

    /// The default directory of data and log files (the instance's DATA folder).
    pub fn default_data_directory(&self) -> String {
        match self.platform {
            Platform::Linux => "/var/opt/mssql/data".into(),
            Platform::Windows => {
                let folder = self.instance_name.as_deref().unwrap_or("MSSQLSERVER");
                format!(
                    "C:\\Program Files\\Microsoft SQL Server\\MSSQL{}.{}\\MSSQL\\DATA",
                    self.version.major, folder
                )
            }
        }
    }

    /// The default directory for backup files named without a path.
    pub fn default_backup_directory(&self) -> String {
        match self.platform {
            Platform::Linux => "/var/opt/mssql/data".into(),
            Platform::Windows => {
                let folder = self.instance_name.as_deref().unwrap_or("MSSQLSERVER");
                format!(
                    "C:\\Program Files\\Microsoft SQL Server\\MSSQL{}.{}\\MSSQL\\Backup",
                    self.version.major, folder
                )
            }
        }
    }
}

/// A NetBIOS-style machine name from the simulator name: upper case, letters, digits
/// and hyphens, at most 15 characters.
fn machine_name_from(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_uppercase()
            } else {
                '-'
            }
        })
        .take(15)
        .collect();
    if cleaned.is_empty() {
        "SQL01".into()
    } else {
        cleaned
    }
}
