//! Continuum field names and their aliases (continuum-protocol.md section 1, the alias table).
//! Names are matched case-insensitively after trimming; the first alias of each entry is the
//! canonical name.

/// A ticket field, whatever name it was delivered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    TicketId,
    Subject,
    Description,
    CreatedDate,
    UpdatedDate,
    Status,
    Priority,
    TicketType,
    AssignTo,
    SiteCode,
    SiteName,
    MemberCode,
    Device,
    RegId,
    Event,
    Comments,
}

/// A field of one comment (an element of `Comments`/`Notes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommentField {
    CommentId,
    Body,
    Author,
    CreatedDate,
    Internal,
}

const TICKET_FIELDS: &[(Field, &[&str])] = &[
    (Field::TicketId, &["TicketID", "TaskID", "TicketNumber", "ID"]),
    (Field::Subject, &["Subject", "TaskSubject", "Title"]),
    (Field::Description, &["Description", "TaskDesc", "TaskDescription"]),
    (Field::CreatedDate, &["CreatedDate", "CreatedOn", "TaskDateTime"]),
    (Field::UpdatedDate, &["UpdatedDate", "UpdatedOn", "LastModified"]),
    (Field::Status, &["Status", "StatusName", "IncidentStatus"]),
    (Field::Priority, &["Priority", "PriorityName"]),
    (Field::TicketType, &["TicketType", "Type", "IncidentType"]),
    (Field::AssignTo, &["AssignTo", "AssignedTo", "AssignTaskTo"]),
    (Field::SiteCode, &["SiteCode"]),
    (Field::SiteName, &["SiteName"]),
    (Field::MemberCode, &["MemberCode", "PartnerCode"]),
    (Field::Device, &["Device", "ResourceName", "MachineName", "ResFriendlyName"]),
    (Field::RegId, &["RegID"]),
    (Field::Event, &["Event", "Action"]),
    (Field::Comments, &["Comments", "Notes"]),
];

const COMMENT_FIELDS: &[(CommentField, &[&str])] = &[
    (CommentField::CommentId, &["CommentID", "NoteID"]),
    (CommentField::Body, &["Body", "Details", "Comment"]),
    (CommentField::Author, &["Author", "CreatedBy"]),
    (CommentField::CreatedDate, &["CreatedDate", "CreatedAt"]),
    (CommentField::Internal, &["Internal", "InternalFlag"]),
];

fn lookup<T: Copy>(table: &[(T, &[&str])], name: &str) -> Option<T> {
    let name = name.trim();
    table
        .iter()
        .find(|(_, aliases)| aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
        .map(|(f, _)| *f)
}

type Table<T> = [(T, &'static [&'static str])];

fn names_of<T: PartialEq>(table: &'static Table<T>, f: &T) -> &'static [&'static str] {
    table.iter().find(|(g, _)| g == f).map(|(_, a)| *a).unwrap_or(&[])
}

impl Field {
    pub const ALL: [Field; 16] = [
        Field::TicketId, Field::Subject, Field::Description, Field::CreatedDate,
        Field::UpdatedDate, Field::Status, Field::Priority, Field::TicketType, Field::AssignTo,
        Field::SiteCode, Field::SiteName, Field::MemberCode, Field::Device, Field::RegId,
        Field::Event, Field::Comments,
    ];

    /// The field a delivered name stands for (case-insensitive, trimmed), `None` if unknown.
    pub fn from_name(name: &str) -> Option<Field> {
        lookup(TICKET_FIELDS, name)
    }

    /// Every accepted name, canonical first.
    pub fn aliases(self) -> &'static [&'static str] {
        names_of(TICKET_FIELDS, &self)
    }

    /// The name the spec uses for this field (e.g. `TicketID`).
    pub fn canonical_name(self) -> &'static str {
        self.aliases()[0]
    }

    pub fn is_datetime(self) -> bool {
        matches!(self, Field::CreatedDate | Field::UpdatedDate)
    }
}

impl CommentField {
    pub const ALL: [CommentField; 5] = [
        CommentField::CommentId, CommentField::Body, CommentField::Author,
        CommentField::CreatedDate, CommentField::Internal,
    ];

    pub fn from_name(name: &str) -> Option<CommentField> {
        lookup(COMMENT_FIELDS, name)
    }

    pub fn aliases(self) -> &'static [&'static str] {
        names_of(COMMENT_FIELDS, &self)
    }

    pub fn canonical_name(self) -> &'static str {
        self.aliases()[0]
    }
}

const NOC_TEAM: &[&str] = &["NOC Team"];
const SERVICE_DESK: &[&str] = &["Service Desk", "Continuum Helpdesk", "Helpdesk", "ServiceDesk"];

fn is_one_of(value: &str, names: &[&str]) -> bool {
    let v = value.trim();
    names.iter().any(|n| n.eq_ignore_ascii_case(v))
}

/// `AssignTo` names Continuum's Service Desk (or one of its aliases).
pub fn is_service_desk(assign_to: &str) -> bool {
    is_one_of(assign_to, SERVICE_DESK)
}

/// `AssignTo` names Continuum's NOC Team.
pub fn is_noc_team(assign_to: &str) -> bool {
    is_one_of(assign_to, NOC_TEAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ticket_alias_maps_to_its_field() {
        let cases: &[(&str, Field)] = &[
            ("TicketID", Field::TicketId), ("TaskID", Field::TicketId),
            ("TicketNumber", Field::TicketId), ("ID", Field::TicketId),
            ("Subject", Field::Subject), ("TaskSubject", Field::Subject), ("Title", Field::Subject),
            ("Description", Field::Description), ("TaskDesc", Field::Description),
            ("TaskDescription", Field::Description),
            ("CreatedDate", Field::CreatedDate), ("CreatedOn", Field::CreatedDate),
            ("TaskDateTime", Field::CreatedDate),
            ("UpdatedDate", Field::UpdatedDate), ("UpdatedOn", Field::UpdatedDate),
            ("LastModified", Field::UpdatedDate),
            ("Status", Field::Status), ("StatusName", Field::Status),
            ("IncidentStatus", Field::Status),
            ("Priority", Field::Priority), ("PriorityName", Field::Priority),
            ("TicketType", Field::TicketType), ("Type", Field::TicketType),
            ("IncidentType", Field::TicketType),
            ("AssignTo", Field::AssignTo), ("AssignedTo", Field::AssignTo),
            ("AssignTaskTo", Field::AssignTo),
            ("SiteCode", Field::SiteCode), ("SiteName", Field::SiteName),
            ("MemberCode", Field::MemberCode), ("PartnerCode", Field::MemberCode),
            ("Device", Field::Device), ("ResourceName", Field::Device),
            ("MachineName", Field::Device), ("ResFriendlyName", Field::Device),
            ("RegID", Field::RegId),
            ("Event", Field::Event), ("Action", Field::Event),
            ("Comments", Field::Comments), ("Notes", Field::Comments),
        ];
        for (name, field) in cases {
            assert_eq!(Field::from_name(name), Some(*field), "{name}");
            assert_eq!(Field::from_name(&name.to_lowercase()), Some(*field), "{name} lower");
            assert_eq!(Field::from_name(&name.to_uppercase()), Some(*field), "{name} upper");
            assert_eq!(Field::from_name(&format!("  {name}\t")), Some(*field), "{name} padded");
        }
        // The table above covers every alias of every field.
        let total: usize = Field::ALL.iter().map(|f| f.aliases().len()).sum();
        assert_eq!(total, cases.len());
    }

    #[test]
    fn every_comment_alias_maps_to_its_field() {
        let cases: &[(&str, CommentField)] = &[
            ("CommentID", CommentField::CommentId), ("NoteID", CommentField::CommentId),
            ("Body", CommentField::Body), ("Details", CommentField::Body),
            ("Comment", CommentField::Body),
            ("Author", CommentField::Author), ("CreatedBy", CommentField::Author),
            ("CreatedDate", CommentField::CreatedDate), ("CreatedAt", CommentField::CreatedDate),
            ("Internal", CommentField::Internal), ("InternalFlag", CommentField::Internal),
        ];
        for (name, field) in cases {
            assert_eq!(CommentField::from_name(name), Some(*field), "{name}");
            assert_eq!(CommentField::from_name(&name.to_ascii_lowercase()), Some(*field));
        }
        let total: usize = CommentField::ALL.iter().map(|f| f.aliases().len()).sum();
        assert_eq!(total, cases.len());
    }

    #[test]
    fn unknown_names_and_canonical_names() {
        assert_eq!(Field::from_name("Ticket ID"), None);
        assert_eq!(Field::from_name(""), None);
        assert_eq!(Field::from_name("PSATicketID"), None);
        assert_eq!(CommentField::from_name("TicketID"), None);
        assert_eq!(Field::TicketId.canonical_name(), "TicketID");
        assert_eq!(Field::RegId.canonical_name(), "RegID");
        assert_eq!(CommentField::Body.canonical_name(), "Body");
        assert!(Field::UpdatedDate.is_datetime() && !Field::Subject.is_datetime());
    }

    #[test]
    fn assignment_targets() {
        for s in ["Service Desk", "service desk", " SERVICE DESK ", "Continuum Helpdesk",
                  "helpdesk", "ServiceDesk"] {
            assert!(is_service_desk(s), "{s}");
            assert!(!is_noc_team(s), "{s}");
        }
        for s in ["NOC Team", "noc team", "  NOC TEAM "] {
            assert!(is_noc_team(s), "{s}");
            assert!(!is_service_desk(s), "{s}");
        }
        for s in ["", "NOC", "jane@msp.example", "Service", "Help desk"] {
            assert!(!is_noc_team(s) && !is_service_desk(s), "{s}");
        }
    }
}
