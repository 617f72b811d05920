"""The audit's name tables: which callees, receivers, keys and attributes mean what to the Python scan.

Each table is a frozen set or a compiled pattern; `Rules` and the visitor read them, nothing changes them.
"""

from __future__ import annotations

import re

__all__ = [
    "CLIP_NAMES", "CONFIG_RECEIVERS", "CONSTRUCTORS", "CONSTRUCTOR_SUFFIX", "CPU_COUNT", "ENV_LIKE", "ENV_NAME",
    "FILE_NAME", "HI_KW", "LOG_ENV", "LOG_KEYS", "LOG_LEVELS", "LO_KW", "MODULE_LIKE", "PROCESS_ATTRS",
    "PROCESS_SETTERS", "REGULARISERS", "SEEDED_MODULES", "STRUCTURAL_ATTRS", "STRUCTURAL_CALLS",
    "STRUCTURAL_KWARGS", "STRUCTURAL_MODES", "UPPER", "WRAPPERS",
]

CONSTRUCTORS = frozenset(  # tkplan: ignore[constant]
    {
        # scikit-learn estimators and transformers not caught by a suffix
        "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV", "Lars", "LassoLars",
        "BayesianRidge", "SVR", "SVC", "LinearSVR", "LinearSVC", "NuSVR", "KMeans", "MiniBatchKMeans",
        "DBSCAN", "PCA", "TruncatedSVD", "IsolationForest", "NearestNeighbors", "SelectKBest",
        "VarianceThreshold",
        # optimizers
        "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "NAdam", "RAdam",
        "LBFGS", "Ftrl", "Lion", "Adafactor",
        # schedulers and callbacks
        "ReduceLROnPlateau", "LearningRateScheduler", "CosineDecay", "ExponentialDecay",
        "PiecewiseConstantDecay", "CosineAnnealingWarmRestarts", "ChainedScheduler", "ModelCheckpoint",
        "TensorBoard", "CSVLogger", "early_stopping", "log_evaluation",
        # layers
        "Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "Conv1D", "Conv2D",
        "Dense", "Dropout", "AlphaDropout", "SpatialDropout1D", "LSTM", "GRU", "RNN", "SimpleRNN",
        "LSTMCell", "GRUCell", "Bidirectional", "Embedding", "BatchNorm1d", "BatchNorm2d", "GroupNorm",
        "MultiheadAttention", "TransformerEncoder", "TransformerDecoder", "MaxPool1d", "AvgPool1d",
        "AdaptiveAvgPool1d",
        # splits, searches and loaders
        "train_test_split", "KFold", "StratifiedKFold", "GroupKFold", "RepeatedKFold",
        "RepeatedStratifiedKFold", "PurgedKFold", "cross_val_score", "cross_validate", "GridSearchCV",
        "RandomizedSearchCV", "DataLoader",
    }
)
"""Callee names whose literal keyword arguments are ``constructor_kwarg`` findings (besides the suffixes)."""

CONSTRUCTOR_SUFFIX = re.compile(
    r"(?:Regressor|Classifier|Regression|Ranker|Scaler|Imputer|Mixture|Transformer|Optimizer|Scheduler"
    r"|Callback|Stopping|Checkpoint|Split|KFold|Layer|Attention|Normalization|Norm|Pooling[123]D|[a-z]LR)$"
)

CONFIG_RECEIVERS = frozenset(  # tkplan: ignore[constant]
    {
        "cfg", "conf", "config", "configs", "configuration", "params", "param", "hparams", "hyperparams",
        "hp", "kwargs", "kw", "options", "opts", "settings", "args", "defaults", "overrides",
    }
)
"""Names (or ``_``-separated parts of names) of objects whose ``.get(key, literal)`` is a config default."""

LOG_KEYS = frozenset({"verbose", "verbosity", "silent", "quiet", "level", "log_level", "loglevel", "logging_level"})
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET"})
LOG_ENV = re.compile(r"LOG_?LEVEL|VERBOS|LOGGING")
STRUCTURAL_KWARGS = frozenset({"name", "dtype", "device", "batch_first", "return_sequences", "return_state"})
STRUCTURAL_MODES = frozenset({"padding", "data_format"})  # structural when the value is a mode name ("same")
STRUCTURAL_ATTRS = frozenset({"ndim", "shape", "version_info", "__version__", "maxsize"})
STRUCTURAL_CALLS = frozenset({"len", "dim", "size", "ndimension"})
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
UPPER = re.compile(r"^_*[A-Z][A-Z0-9_]*$")
ENV_LIKE = frozenset({"env", "environ", "environment", "env_vars", "envvars"})
CLIP_NAMES = frozenset({"clip", "clamp", "clip_", "clamp_", "clip_by_value"})
MODULE_LIKE = frozenset({"np", "numpy", "torch", "tf", "jnp", "cp", "F", "math"})
WRAPPERS = frozenset({"int", "float", "round", "abs", "floor", "ceil"})
CPU_COUNT = frozenset({"cpu_count", "process_cpu_count", "device_count"})
LO_KW = frozenset({"min", "a_min", "lower", "lo", "clip_value_min"})
HI_KW = frozenset({"max", "a_max", "upper", "hi", "clip_value_max"})
FILE_NAME = re.compile(r"^[\w\-./]*\w\.[A-Za-z][A-Za-z0-9]{0,4}$")
"""A file name with an extension (``model.txt``, ``out/preds.parquet``): a name, not a setting."""

REGULARISERS = frozenset(  # tkplan: ignore[constant]
    {
        "GaussianNoise", "GaussianDropout", "ActivityRegularization", "L1", "L2", "L1L2", "l1", "l2", "l1_l2",
        "LeakyReLU", "ELU", "Softplus",
    }
)
"""Callees besides the constructors whose literal positional numbers are ``positional_arg`` findings."""

PROCESS_SETTERS = frozenset(  # tkplan: ignore[constant]
    {
        "set_printoptions", "seterr", "set_num_threads", "set_num_interop_threads",
        "set_intra_op_parallelism_threads", "set_inter_op_parallelism_threads", "set_float32_matmul_precision",
        "use_deterministic_algorithms", "set_default_dtype", "set_flush_denormal",
        "set_per_process_memory_fraction", "set_memory_growth", "threadpool_limits", "set_option", "set_seed",
        "set_random_seed", "manual_seed", "manual_seed_all", "enable_op_determinism",
    }
)
"""Calls that make a process-wide setting (NumPy print and error options, framework threads, seeds)."""

SEEDED_MODULES = frozenset({"random", "np.random", "numpy.random"})
"""Receivers whose ``.seed(n)`` seeds the whole process."""

PROCESS_ATTRS = ("torch.backends.", "pd.options.", "pandas.options.", "tf.config.")  # tkplan: ignore[constant]
"""Attribute chains whose assignment is a process-wide setting (``torch.backends.cudnn.benchmark = True``)."""
