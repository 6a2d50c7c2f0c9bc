//! What a `+CMS ERROR` on a send means, and what to do about it: hold the SIM's queue and tell a
//! person (the SIM is barred, has no SMS service or no credit), try again later (the network is
//! busy or out of order), give the one message up (the recipient's number does not exist), or wait
//! for the modem (no network, SIM busy). Pure: a code in, a decision out.
//!
//! Codes below 256 are the network's RP causes passed through by the modem (3GPP TS 24.011
//! §8.2.5.4, Table 8.4 and its annex E); 300 and up are the ME and SIM's own (TS 27.005 §3.2.5).
//! The field notes (MODEMS.md, "network refusals on send") list the causes seen on real SIMs.

/// What the outbox does with a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The SIM or its account is refused by the network: every text from it would fail the same
    /// way, so its queue is held (no tries burnt), the reason recorded, and a person told. The
    /// queue is tried again now and then, as a top-up or an unbarring fixes it without a restart.
    HoldQueue,
    /// The network is busy or briefly out of order: try the same text again with back-off.
    Retry,
    /// Only this message can never go (the number does not exist, the PDU is wrong): record it
    /// failed and go on with the next.
    FailMessage,
    /// The modem, its SIM or the network is away for now: the text waits without using a try.
    WaitForModem,
}

/// The refusal, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// RP cause 8: operator determined barring (unpaid account, barred SIM).
    OperatorBarring,
    /// RP cause 10: call barred (outgoing SMS barred on this SIM).
    CallBarred,
    /// RP cause 21: short message transfer rejected; on pay-as-you-go SIMs, usually no credit.
    TransferRejected,
    /// RP cause 29: facility rejected.
    FacilityRejected,
    /// RP cause 50: requested facility not subscribed (no SMS service, or no credit).
    NotSubscribed,
    /// RP cause 69: requested facility not implemented.
    NotImplemented,
    /// 27.005 302: operation not allowed (the SIM or modem refuses SMS).
    NotAllowed,
    /// 27.005 330: no service centre address.
    SmscUnknown,
    /// RP cause 1: unassigned number.
    UnassignedNumber,
    /// RP cause 28: unidentified subscriber.
    UnidentifiedSubscriber,
    /// RP cause 30: unknown subscriber.
    UnknownSubscriber,
    /// RP cause 96 or 27.005 304: the message itself is malformed.
    InvalidMessage,
    /// RP cause 27: destination out of service.
    DestinationOutOfService,
    /// RP cause 38: network out of order.
    NetworkOutOfOrder,
    /// RP cause 41: temporary failure.
    TemporaryFailure,
    /// RP cause 42: congestion.
    Congestion,
    /// RP cause 47: resources unavailable.
    ResourcesUnavailable,
    /// RP cause 111: protocol error.
    ProtocolError,
    /// 27.005 331 no network service, 332 network timeout.
    NoNetwork,
    /// 27.005 314: SIM busy; 310 and 313: SIM not inserted or failed.
    SimUnavailable,
    /// 27.005 500 unknown error, 512 to 535 the manufacturer's own: often a send too soon.
    ModemError,
    /// Any other code.
    Other,
}

impl Cause {
    /// The cause a `+CMS ERROR: <code>` names.
    pub fn from_code(code: u16) -> Cause {
        match code {
            8 => Cause::OperatorBarring,
            10 => Cause::CallBarred,
            21 => Cause::TransferRejected,
            29 => Cause::FacilityRejected,
            50 => Cause::NotSubscribed,
            69 => Cause::NotImplemented,
            302 | 315 => Cause::NotAllowed,
            330 => Cause::SmscUnknown,
            1 => Cause::UnassignedNumber,
            28 => Cause::UnidentifiedSubscriber,
            30 => Cause::UnknownSubscriber,
            96 | 304 => Cause::InvalidMessage,
            27 => Cause::DestinationOutOfService,
            38 => Cause::NetworkOutOfOrder,
            41 => Cause::TemporaryFailure,
            42 => Cause::Congestion,
            47 => Cause::ResourcesUnavailable,
            111 => Cause::ProtocolError,
            331 | 332 => Cause::NoNetwork,
            310 | 313 | 314 => Cause::SimUnavailable,
            500 | 512..=535 => Cause::ModemError,
            _ => Cause::Other,
        }
    }

    /// Whether the refusal may mean the SIM has no credit (TS 24.011 causes 8, 21 and 50 are what
    /// UK networks answer a pay-as-you-go SIM at zero): worth a balance check.
    pub fn may_mean_no_credit(self) -> bool {
        matches!(
            self,
            Cause::OperatorBarring | Cause::TransferRejected | Cause::NotSubscribed
        )
    }

    /// What to do about it.
    pub fn remedy(self) -> Remedy {
        match self {
            Cause::OperatorBarring
            | Cause::CallBarred
            | Cause::TransferRejected
            | Cause::FacilityRejected
            | Cause::NotSubscribed
            | Cause::NotImplemented
            | Cause::NotAllowed
            | Cause::SmscUnknown => Remedy::HoldQueue,
            Cause::UnassignedNumber
            | Cause::UnidentifiedSubscriber
            | Cause::UnknownSubscriber
            | Cause::InvalidMessage
            | Cause::Other => Remedy::FailMessage,
            Cause::DestinationOutOfService
            | Cause::NetworkOutOfOrder
            | Cause::TemporaryFailure
            | Cause::Congestion
            | Cause::ResourcesUnavailable
            | Cause::ProtocolError
            | Cause::ModemError => Remedy::Retry,
            Cause::NoNetwork | Cause::SimUnavailable => Remedy::WaitForModem,
        }
    }

    /// One word for the store and /metrics labels.
    pub fn word(self) -> &'static str {
        match self {
            Cause::OperatorBarring => "operator_barring",
            Cause::CallBarred => "call_barred",
            Cause::TransferRejected => "transfer_rejected",
            Cause::FacilityRejected => "facility_rejected",
            Cause::NotSubscribed => "not_subscribed",
            Cause::NotImplemented => "not_implemented",
            Cause::NotAllowed => "not_allowed",
            Cause::SmscUnknown => "smsc_unknown",
            Cause::UnassignedNumber => "unassigned_number",
            Cause::UnidentifiedSubscriber => "unidentified_subscriber",
            Cause::UnknownSubscriber => "unknown_subscriber",
            Cause::InvalidMessage => "invalid_message",
            Cause::DestinationOutOfService => "destination_out_of_service",
            Cause::NetworkOutOfOrder => "network_out_of_order",
            Cause::TemporaryFailure => "temporary_failure",
            Cause::Congestion => "congestion",
            Cause::ResourcesUnavailable => "resources_unavailable",
            Cause::ProtocolError => "protocol_error",
            Cause::NoNetwork => "no_network",
            Cause::SimUnavailable => "sim_unavailable",
            Cause::ModemError => "modem_error",
            Cause::Other => "other",
        }
    }

    /// What the network meant, in words.
    pub fn meaning(self) -> &'static str {
        match self {
            Cause::OperatorBarring => "the network bars this SIM (operator determined barring)",
            Cause::CallBarred => "outgoing texts are barred on this SIM",
            Cause::TransferRejected => {
                "the network rejected the text; on pay-as-you-go SIMs this usually means no credit"
            }
            Cause::FacilityRejected => "the network refused the SMS service to this SIM",
            Cause::NotSubscribed => "this SIM has no SMS service, or no credit",
            Cause::NotImplemented => "the network does not offer SMS to this SIM",
            Cause::NotAllowed => "the modem or SIM does not allow sending texts",
            Cause::SmscUnknown => "the SIM has no service centre address",
            Cause::UnassignedNumber => "the recipient's number does not exist",
            Cause::UnidentifiedSubscriber | Cause::UnknownSubscriber => {
                "the network does not know the recipient"
            }
            Cause::InvalidMessage => "the message was malformed (a bug: reported, not retried)",
            Cause::DestinationOutOfService => "the recipient's network is out of service",
            Cause::NetworkOutOfOrder => "the network is out of order",
            Cause::TemporaryFailure => "a temporary failure in the network",
            Cause::Congestion => "the network is congested",
            Cause::ResourcesUnavailable => "the network has no resources free",
            Cause::ProtocolError => "a protocol error between modem and network",
            Cause::NoNetwork => "no network service",
            Cause::SimUnavailable => "the SIM is busy or not there",
            Cause::ModemError => "the modem failed the send (often a send too soon after the last)",
            Cause::Other => "an error this version of textback does not name",
        }
    }

    /// What a person should do, for an alert.
    pub fn what_to_do(self) -> &'static str {
        match self {
            Cause::OperatorBarring | Cause::CallBarred | Cause::FacilityRejected => {
                "Call the network's customer service about the SIM: it may be barred for unpaid bills or for texting too many numbers"
            }
            Cause::TransferRejected | Cause::NotSubscribed => {
                "Top up the SIM or check its plan includes texts"
            }
            Cause::NotImplemented | Cause::NotAllowed => {
                "Check the SIM in a phone can send a text; if it can, run `textback modem diagnose`"
            }
            Cause::SmscUnknown => {
                "Set modem.smsc in the config (the network's service centre number)"
            }
            Cause::UnassignedNumber
            | Cause::UnidentifiedSubscriber
            | Cause::UnknownSubscriber
            | Cause::InvalidMessage
            | Cause::Other => "Nothing for this SIM: the one text is recorded as failed",
            Cause::DestinationOutOfService
            | Cause::NetworkOutOfOrder
            | Cause::TemporaryFailure
            | Cause::Congestion
            | Cause::ResourcesUnavailable
            | Cause::ProtocolError
            | Cause::ModemError => "Nothing: the text is tried again with back-off",
            Cause::NoNetwork | Cause::SimUnavailable => {
                "Check the aerial and the SIM; the text waits until the modem is back"
            }
        }
    }
}

/// Decides on a `+CMS ERROR: <code>` from a send.
pub fn classify(code: u16) -> (Cause, Remedy) {
    let cause = Cause::from_code(code);
    (cause, cause.remedy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The causes the field notes list (MODEMS.md, "network refusals on send"), each with what
    /// the outbox must do: permanent ones hold the queue and are never retried.
    #[test]
    fn the_causes_of_the_field_notes() {
        let cases = [
            (8, Cause::OperatorBarring, Remedy::HoldQueue),
            (10, Cause::CallBarred, Remedy::HoldQueue),
            (21, Cause::TransferRejected, Remedy::HoldQueue),
            (29, Cause::FacilityRejected, Remedy::HoldQueue),
            (38, Cause::NetworkOutOfOrder, Remedy::Retry),
            (41, Cause::TemporaryFailure, Remedy::Retry),
            (42, Cause::Congestion, Remedy::Retry),
            (50, Cause::NotSubscribed, Remedy::HoldQueue),
            (69, Cause::NotImplemented, Remedy::HoldQueue),
            (330, Cause::SmscUnknown, Remedy::HoldQueue),
            (331, Cause::NoNetwork, Remedy::WaitForModem),
            (332, Cause::NoNetwork, Remedy::WaitForModem),
            (304, Cause::InvalidMessage, Remedy::FailMessage),
            (500, Cause::ModemError, Remedy::Retry),
            (1, Cause::UnassignedNumber, Remedy::FailMessage),
            (314, Cause::SimUnavailable, Remedy::WaitForModem),
            (999, Cause::Other, Remedy::FailMessage),
        ];
        for (code, cause, remedy) in cases {
            assert_eq!(classify(code), (cause, remedy), "+CMS ERROR: {code}");
        }
    }

    #[test]
    fn every_cause_has_a_word_a_meaning_and_advice() {
        let mut words = std::collections::HashSet::new();
        for code in 0..=600u16 {
            let cause = Cause::from_code(code);
            assert!(!cause.meaning().is_empty());
            assert!(!cause.what_to_do().is_empty());
            assert!(
                cause
                    .word()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            words.insert(cause.word());
        }
        assert!(words.len() >= 20, "{words:?}");
    }

    #[test]
    fn a_hold_says_what_to_do() {
        for code in [8u16, 10, 21, 29, 50, 69, 302, 330] {
            let (cause, remedy) = classify(code);
            assert_eq!(remedy, Remedy::HoldQueue);
            assert!(
                !cause.what_to_do().starts_with("Nothing"),
                "{code}: {}",
                cause.what_to_do()
            );
        }
    }
}
