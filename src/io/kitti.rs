//! todo
use super::ReadReport;
use crate::{Error, PointCloud, Result};
use std::path::Path;
pub fn read(path: &Path) -> Result<(PointCloud, ReadReport)> {
    Err(Error::format(path, "todo"))
}
pub fn write(path: &Path, _c: &PointCloud) -> Result<()> {
    Err(Error::format(path, "todo"))
}
