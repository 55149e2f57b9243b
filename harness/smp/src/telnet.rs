//! The Telnet layer of RFC 2217 ("Telnet Com Port Control Option"): what a serial port shared
//! over the network by ser2net (the way a labgrid exporter publishes a `NetworkSerialPort`)
//! speaks on its socket.
//!
//! Telnet (RFC 854) interleaves commands with data: byte 0xFF (IAC) starts a command, so a data
//! byte 0xFF travels doubled (IAC IAC) in both directions. SMP console frames are base64 text,
//! but device log and a board's boot noise may carry any byte, so the escaping matters both ways.
//! Options are negotiated with WILL/WONT/DO/DONT (RFC 854, RFC 1143's rule: answer only a change
//! of state, never loop); the serial settings travel as `IAC SB COM-PORT-OPTION <cmd> <value>
//! IAC SE` subnegotiations (RFC 2217 section 3), the server answering each with `cmd + 100`.
//!
//! This module is only the byte-level state machine, without I/O, so it can be tested against
//! scripted peers; [`crate::netport`] puts it on a socket.

/// Interpret As Command.
pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
/// Subnegotiation begin / end.
pub const SB: u8 = 250;
pub const SE: u8 = 240;

/// RFC 856: 8-bit transparent data (no CR NUL stuffing).
pub const OPT_BINARY: u8 = 0;
/// RFC 858: no go-ahead signals (full duplex).
pub const OPT_SGA: u8 = 3;
/// RFC 2217: COM-PORT-OPTION.
pub const OPT_COM_PORT: u8 = 44;

/// RFC 2217 client-to-server commands (the server answers with the same number + 100).
pub const SET_BAUDRATE: u8 = 1;
pub const SET_DATASIZE: u8 = 2;
pub const SET_PARITY: u8 = 3;
pub const SET_STOPSIZE: u8 = 4;
pub const SET_CONTROL: u8 = 5;
/// Offset of a server's answer to a client command.
pub const SERVER_OFFSET: u8 = 100;

/// RFC 2217 values for 8N1 without flow control.
pub const PARITY_NONE: u8 = 1;
pub const STOPSIZE_ONE: u8 = 1;
pub const CONTROL_NO_FLOW: u8 = 1;

/// Double every 0xFF so the peer reads it as data, not as a command.
pub fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

/// `IAC SB COM-PORT-OPTION cmd value… IAC SE`, with IAC bytes in the value doubled
/// (RFC 2217 section 3: a baud rate of e.g. 0x0000FF00 has an IAC inside).
pub fn com_port_command(cmd: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![IAC, SB, OPT_COM_PORT, cmd];
    out.extend(escape(value));
    out.extend([IAC, SE]);
    out
}

/// The subnegotiations that put the remote port at `baud`, 8N1, no flow control.
pub fn serial_settings(baud: u32) -> Vec<u8> {
    let mut out = com_port_command(SET_BAUDRATE, &baud.to_be_bytes());
    out.extend(com_port_command(SET_DATASIZE, &[8]));
    out.extend(com_port_command(SET_PARITY, &[PARITY_NONE]));
    out.extend(com_port_command(SET_STOPSIZE, &[STOPSIZE_ONE]));
    out.extend(com_port_command(SET_CONTROL, &[CONTROL_NO_FLOW]));
    out
}

/// What the client offers when it connects: binary both ways, no go-ahead, and COM-PORT-OPTION
/// (RFC 2217 section 2: the client sends WILL COM-PORT-OPTION; the server agrees with DO).
pub fn client_greeting() -> Vec<u8> {
    vec![
        IAC,
        WILL,
        OPT_BINARY,
        IAC,
        DO,
        OPT_BINARY,
        IAC,
        WILL,
        OPT_SGA,
        IAC,
        DO,
        OPT_SGA,
        IAC,
        WILL,
        OPT_COM_PORT,
    ]
}

/// A subnegotiation the server sent (RFC 2217 answers and notifications), kept for diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnegotiation {
    pub option: u8,
    pub data: Vec<u8>,
}

/// What one chunk of socket bytes held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Serial data, unescaped.
    pub data: Vec<u8>,
    /// Bytes to send back (answers to the peer's option requests).
    pub reply: Vec<u8>,
    /// Complete subnegotiations received.
    pub subnegotiations: Vec<Subnegotiation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    /// After WILL/WONT/DO/DONT, waiting for the option byte.
    Verb(u8),
    /// Inside SB, first byte (the option) pending.
    SbOption,
    Sb,
    SbIac,
}

/// Receiving side of a Telnet client that accepts BINARY, SGA and COM-PORT-OPTION and refuses
/// every other option. Holds its state across chunks, so a command split between two reads
/// is still understood.
#[derive(Debug)]
pub struct TelnetDecoder {
    state: State,
    sb_option: u8,
    sb_data: Vec<u8>,
    /// Options this side has agreed to perform (we sent WILL) / asked the peer to perform (DO).
    we_will: [bool; 256],
    we_do: [bool; 256],
    /// The server agreed to COM-PORT-OPTION (sent DO 44) / refused it (DONT 44).
    pub com_port_accepted: Option<bool>,
}

/// A subnegotiation longer than this is not RFC 2217; the rest is dropped rather than grown.
const MAX_SB: usize = 256;

impl Default for TelnetDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TelnetDecoder {
    /// A decoder for a client that has sent [`client_greeting`].
    pub fn new() -> Self {
        let mut d = TelnetDecoder {
            state: State::Data,
            sb_option: 0,
            sb_data: Vec::new(),
            we_will: [false; 256],
            we_do: [false; 256],
            com_port_accepted: None,
        };
        for o in [OPT_BINARY, OPT_SGA, OPT_COM_PORT] {
            d.we_will[o as usize] = true;
        }
        for o in [OPT_BINARY, OPT_SGA] {
            d.we_do[o as usize] = true;
        }
        d
    }

    fn wanted(option: u8) -> bool {
        matches!(option, OPT_BINARY | OPT_SGA | OPT_COM_PORT)
    }

    /// Decode `bytes`, appending to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Decoded) {
        for &b in bytes {
            self.state = match self.state {
                State::Data if b == IAC => State::Iac,
                State::Data => {
                    out.data.push(b);
                    State::Data
                }
                State::Iac => match b {
                    IAC => {
                        out.data.push(IAC);
                        State::Data
                    }
                    WILL | WONT | DO | DONT => State::Verb(b),
                    SB => State::SbOption,
                    // NOP, GA, break, … carry nothing for a serial byte stream.
                    _ => State::Data,
                },
                State::Verb(verb) => {
                    self.negotiate(verb, b, &mut out.reply);
                    State::Data
                }
                State::SbOption => {
                    self.sb_option = b;
                    self.sb_data.clear();
                    State::Sb
                }
                State::Sb if b == IAC => State::SbIac,
                State::Sb => {
                    if self.sb_data.len() < MAX_SB {
                        self.sb_data.push(b);
                    }
                    State::Sb
                }
                State::SbIac => match b {
                    IAC => {
                        if self.sb_data.len() < MAX_SB {
                            self.sb_data.push(IAC);
                        }
                        State::Sb
                    }
                    SE => {
                        out.subnegotiations.push(Subnegotiation {
                            option: self.sb_option,
                            data: std::mem::take(&mut self.sb_data),
                        });
                        State::Data
                    }
                    // A malformed end: treat it as the end and read on as data.
                    _ => {
                        self.sb_data.clear();
                        State::Data
                    }
                },
            };
        }
    }

    /// Answer a peer's WILL/WONT/DO/DONT, only where it changes the state (RFC 1143).
    fn negotiate(&mut self, verb: u8, option: u8, reply: &mut Vec<u8>) {
        let i = option as usize;
        match verb {
            DO => {
                if option == OPT_COM_PORT {
                    self.com_port_accepted = Some(true);
                }
                if Self::wanted(option) {
                    if !self.we_will[i] {
                        self.we_will[i] = true;
                        reply.extend([IAC, WILL, option]);
                    }
                } else {
                    reply.extend([IAC, WONT, option]);
                }
            }
            DONT => {
                if option == OPT_COM_PORT {
                    self.com_port_accepted = Some(false);
                }
                let was = std::mem::replace(&mut self.we_will[i], false);
                if was {
                    reply.extend([IAC, WONT, option]);
                }
            }
            WILL => {
                if Self::wanted(option) {
                    if !self.we_do[i] {
                        self.we_do[i] = true;
                        reply.extend([IAC, DO, option]);
                    }
                } else {
                    reply.extend([IAC, DONT, option]);
                }
            }
            WONT => {
                let was = std::mem::replace(&mut self.we_do[i], false);
                if was {
                    reply.extend([IAC, DONT, option]);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Decoded {
        let mut d = TelnetDecoder::new();
        let mut out = Decoded::default();
        for c in chunks {
            d.push(c, &mut out);
        }
        out
    }

    #[test]
    fn escape_doubles_only_iac() {
        assert_eq!(
            escape(&[1, 0xFF, 2, 0xFF, 0xFF]),
            [1, 0xFF, 0xFF, 2, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(escape(b"abc"), b"abc");
    }

    #[test]
    fn doubled_iac_is_one_data_byte_even_split_across_reads() {
        let out = decode(&[&[b'a', IAC], &[IAC, b'b']]);
        assert_eq!(out.data, [b'a', 0xFF, b'b']);
        assert!(out.reply.is_empty());
    }

    #[test]
    fn baud_with_iac_inside_is_escaped() {
        let cmd = com_port_command(SET_BAUDRATE, &0x0000_FF00u32.to_be_bytes());
        assert_eq!(
            cmd,
            [
                IAC,
                SB,
                OPT_COM_PORT,
                SET_BAUDRATE,
                0,
                0,
                0xFF,
                0xFF,
                0,
                IAC,
                SE
            ]
        );
    }

    #[test]
    fn server_answer_with_escaped_value_is_decoded() {
        let out = decode(&[
            &[IAC, SB, OPT_COM_PORT, 101, 0, 0, 0xFF, 0xFF],
            &[0, IAC, SE, b'x'],
        ]);
        assert_eq!(
            out.subnegotiations,
            [Subnegotiation {
                option: OPT_COM_PORT,
                data: vec![101, 0, 0, 0xFF, 0]
            }]
        );
        assert_eq!(out.data, b"x");
    }

    #[test]
    fn unknown_options_are_refused_and_agreed_ones_not_echoed() {
        let mut d = TelnetDecoder::new();
        let mut out = Decoded::default();
        // ECHO (1) offered, terminal type (24) asked for, binary agreed (already ours).
        d.push(
            &[
                IAC,
                WILL,
                1,
                IAC,
                DO,
                24,
                IAC,
                DO,
                OPT_BINARY,
                IAC,
                DO,
                OPT_COM_PORT,
            ],
            &mut out,
        );
        assert_eq!(out.reply, [IAC, DONT, 1, IAC, WONT, 24]);
        assert_eq!(d.com_port_accepted, Some(true));
    }

    #[test]
    fn refused_com_port_is_recorded() {
        let mut d = TelnetDecoder::new();
        let mut out = Decoded::default();
        d.push(&[IAC, DONT, OPT_COM_PORT], &mut out);
        assert_eq!(d.com_port_accepted, Some(false));
        assert_eq!(out.reply, [IAC, WONT, OPT_COM_PORT]);
    }

    #[test]
    fn overlong_subnegotiation_is_bounded() {
        let mut bytes = vec![IAC, SB, OPT_COM_PORT];
        bytes.extend(std::iter::repeat_n(7, 10_000));
        bytes.extend([IAC, SE, b'z']);
        let out = decode(&[&bytes]);
        assert_eq!(out.subnegotiations[0].data.len(), MAX_SB);
        assert_eq!(out.data, b"z");
    }

    #[test]
    fn settings_are_8n1_without_flow_control() {
        let s = serial_settings(115_200);
        let mut d = TelnetDecoder::new();
        let mut out = Decoded::default();
        d.push(&s, &mut out);
        let cmds: Vec<_> = out.subnegotiations.iter().map(|s| s.data.clone()).collect();
        assert_eq!(
            cmds,
            [
                vec![SET_BAUDRATE, 0, 1, 0xC2, 0],
                vec![SET_DATASIZE, 8],
                vec![SET_PARITY, PARITY_NONE],
                vec![SET_STOPSIZE, STOPSIZE_ONE],
                vec![SET_CONTROL, CONTROL_NO_FLOW],
            ]
        );
    }
}
