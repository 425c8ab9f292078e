//! placeholder: being written.
use crate::options::OptionReader;
use crate::registry::TrainData;
use crate::{Detector, ModelError, Result};

pub fn fit(_data: &TrainData, _r: &OptionReader) -> Result<Box<dyn Detector>> {
    Err(ModelError::NotImplemented("model `autoencoder`".into()))
}

pub fn load(_p: &serde_json::Value) -> Result<Box<dyn Detector>> {
    Err(ModelError::NotImplemented("model `autoencoder`".into()))
}
