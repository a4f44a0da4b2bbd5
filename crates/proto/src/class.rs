//! A node's class as it declares it at registration (C3's provider and client
//! rules): premium or free, and its device class. One byte on the wire
//! ([`NodeClass`], bit 0 premium, bits 1..=3 the device class), so `Register`
//! is exactly as long as when it carried `premium: bool` (postcard writes a
//! `bool` and a `u8` alike: one byte, 0 or 1 for a free or premium node of an
//! unspecified device class).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The device classes a node may declare and a policy may name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceClass {
    /// Not declared (the simulator's peers, nodes that say nothing).
    #[default]
    Unspecified,
    Desktop,
    Mobile,
    Tablet,
    Tv,
    SetTop,
}

impl DeviceClass {
    /// Every class, in wire order.
    pub const ALL: [DeviceClass; 6] = [
        DeviceClass::Unspecified,
        DeviceClass::Desktop,
        DeviceClass::Mobile,
        DeviceClass::Tablet,
        DeviceClass::Tv,
        DeviceClass::SetTop,
    ];

    /// The name policies and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Unspecified => "unspecified",
            DeviceClass::Desktop => "desktop",
            DeviceClass::Mobile => "mobile",
            DeviceClass::Tablet => "tablet",
            DeviceClass::Tv => "tv",
            DeviceClass::SetTop => "set-top",
        }
    }

    /// The class named `name` (exact, lower case), if any.
    pub fn from_name(name: &str) -> Option<DeviceClass> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every name, comma separated (for error messages).
    pub fn names() -> String {
        Self::ALL.map(DeviceClass::name).join(", ")
    }

    fn code(self) -> u8 {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8
    }

    fn from_code(code: u8) -> DeviceClass {
        Self::ALL
            .get(usize::from(code))
            .copied()
            .unwrap_or_default()
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bit 0: premium; bits 1..=3: the device class (an unknown code reads as
/// unspecified: outside input never fails to decode for it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeClass(pub u8);

impl NodeClass {
    const PREMIUM: u8 = 1;
    const DEVICE_SHIFT: u8 = 1;
    const DEVICE_MASK: u8 = 0b111;

    pub fn new(premium: bool, device: DeviceClass) -> Self {
        NodeClass(u8::from(premium) | (device.code() << Self::DEVICE_SHIFT))
    }

    pub fn premium(self) -> bool {
        self.0 & Self::PREMIUM != 0
    }

    pub fn device(self) -> DeviceClass {
        DeviceClass::from_code((self.0 >> Self::DEVICE_SHIFT) & Self::DEVICE_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_is_one_byte_and_a_free_or_premium_unspecified_node_encodes_like_a_bool() {
        for premium in [false, true] {
            let class = postcard::to_allocvec(&NodeClass::new(premium, DeviceClass::Unspecified))
                .expect("encodes");
            assert_eq!(class, postcard::to_allocvec(&premium).expect("encodes"));
        }
        for d in DeviceClass::ALL {
            for premium in [false, true] {
                let c = NodeClass::new(premium, d);
                let bytes = postcard::to_allocvec(&c).expect("encodes");
                assert_eq!(bytes.len(), 1);
                let back: NodeClass = postcard::from_bytes(&bytes).expect("decodes");
                assert_eq!((back.premium(), back.device()), (premium, d));
            }
        }
    }

    #[test]
    fn unknown_device_codes_read_as_unspecified_and_names_round_trip() {
        assert_eq!(NodeClass(0b1111_1111).device(), DeviceClass::Unspecified);
        assert!(NodeClass(0b1111_1111).premium());
        for d in DeviceClass::ALL {
            assert_eq!(DeviceClass::from_name(d.name()), Some(d));
        }
        assert_eq!(DeviceClass::from_name("kids-tablet"), None);
    }
}
