//! Every carrier as its documentation describes it (not as our writer does), gathered from its folder
//! (`carriers::<name>::sim`): Plivo's signed answer-URL request, Exotel's dynamic-URL request and stream
//! events, Twilio's signed voice webhook and Media Streams events. Their streams open with
//! `carrier::CarrierConn`.

pub use super::placing::XmlAnswer;
pub use crate::carriers::exotel::sim::{
    exotel_dtmf_event, exotel_media_event, exotel_start_event, exotel_stop_event, get_exotel_voicebot,
};
pub use crate::carriers::plivo::sim::{post_plivo_answer, PlivoRequest, PlivoSigning};
pub use crate::carriers::twilio::sim::{
    post_twilio_voice, twilio_connected_event, twilio_dtmf_event, twilio_media_event, twilio_start_event,
    twilio_stop_event, TwilioRequest,
};
