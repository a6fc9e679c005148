//! The crate's one error type.
//!
//! Every fallible function in pointpipe returns [`Result<T>`]. Errors that come
//! from a file always name the file and the reason, so that a CLI user can act
//! on the message without a backtrace.

use std::path::PathBuf;

/// Everything that can go wrong in pointpipe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file that was being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file whose content is not what its format promises (wrong magic,
    /// truncated data, a header that promises more points than the file holds...).
    #[error("{path}: {reason}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        reason: String,
    },

    /// A file extension (or format name) that pointpipe cannot read or write.
    #[error("{path}: unsupported format '{extension}' (expected one of: las, laz, ply, pcd, bin)")]
    UnsupportedFormat {
        /// The offending file.
        path: PathBuf,
        /// Its extension, lower-cased (empty when there is none).
        extension: String,
    },

    /// An error reported by the `las` crate while reading or writing LAS/LAZ.
    #[error("{path}: LAS/LAZ: {source}")]
    Las {
        /// The offending file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<las::Error>,
    },

    /// A parameter outside its valid range (e.g. a voxel size that is not
    /// finite and positive).
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name as it appears in the config struct.
        name: &'static str,
        /// The value that was given, formatted.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },

    /// A point id that no live point of the layer has.
    #[error("layer '{layer}' has no point with id {id}")]
    UnknownPoint {
        /// The layer.
        layer: String,
        /// The id asked for.
        id: u64,
    },

    /// A change that cannot be accepted in the current state (retry later).
    #[error("conflict: {reason}")]
    Conflict {
        /// Why, and what to do.
        reason: String,
    },

    /// An input point cloud with no points where at least one is required.
    #[error("empty point cloud: {what}")]
    EmptyCloud {
        /// Which input was empty (e.g. "ICP source").
        what: String,
    },

    /// A point with a NaN or infinite coordinate where only finite points are
    /// allowed.
    #[error("non-finite point at index {index} in {what}")]
    NonFinite {
        /// Which input held the point.
        what: String,
        /// Index of the first offending point.
        index: usize,
    },

    /// A registration or estimation that could not produce a result (e.g. no
    /// correspondences within `max_correspondence_distance`).
    #[error("registration failed: {reason}")]
    Registration {
        /// Why it failed.
        reason: String,
    },

    /// An output path that would overwrite one of the inputs.
    #[error("{path}: refusing to overwrite an input file")]
    OutputIsInput {
        /// The path given both as input and output.
        path: PathBuf,
    },

    /// Two trajectories that cannot be compared: different pose counts, or
    /// fewer poses than the metric needs.
    #[error(
        "trajectories of {estimated} (estimated) and {reference} (reference) poses: \
         need the same number of poses, at least {min}"
    )]
    TrajectoryLength {
        /// Poses in the estimated trajectory.
        estimated: usize,
        /// Poses in the reference trajectory.
        reference: usize,
        /// The minimum the metric needs (2, or 3 for an alignment).
        min: usize,
    },

    /// A frame of a sequence that could not be read (see
    /// [`odometry::run_sequence`](crate::odometry::run_sequence)).
    #[error("frame {index}: {source}")]
    Frame {
        /// 0-based index of the frame in the sequence.
        index: usize,
        /// The read error.
        #[source]
        source: Box<Error>,
    },

    /// The 3D viewer (feature `viewer`) could not open a window, find a GPU
    /// adapter, or write its screenshot. The message says how to run headless.
    #[error("viewer: {reason}")]
    Viewer {
        /// What failed and what to do about it.
        reason: String,
    },
}

/// `Result` with pointpipe's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Format`].
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The same error with ` (context)` appended to the reason of an
    /// [`Error::InvalidParameter`] (which element of a list was invalid);
    /// other errors unchanged.
    pub(crate) fn in_context(self, context: impl std::fmt::Display) -> Self {
        match self {
            Error::InvalidParameter {
                name,
                value,
                reason,
            } => Error::InvalidParameter {
                name,
                value,
                reason: format!("{reason} ({context})"),
            },
            other => other,
        }
    }

    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid(
        name: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
