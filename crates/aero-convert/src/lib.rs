//! Importers and exporters between AERO and safetensors / GGUF.

pub mod gguf;
