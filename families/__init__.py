"""Model family adapters and the data layer; every hyperparameter comes from the plan's step.

`run_step` is the default trainer of a step (``tkplan.families:run_step``): it prepares the run's data once
(`prepare`: cleaned, split by time, saved as ``.npy`` and memory-mapped by every step), fits the adapter
registered for the step's family, and returns validation and test metrics, the files written and the
thread counts the library reports. Adapters subclass `FamilyAdapter` and are made known with `register`.

Built-in adapters: ``lightgbm``, ``quantile_lightgbm``, ``xgboost`` (``_gbdt``), ``ngboost``, ``ensemble``,
``gmm_regime``, ``change_point`` (``_regime``), ``ftrl_proximal``, ``reward_based`` (``_linear``), and the
network families on PyTorch (``_nn``): ``mlp``, ``cnn1d``, ``lstm``, ``transformer``, ``tab_cnn``,
``tab_lstm``, ``tab_transformer``, ``vae``, ``gan``, ``meta_learning``, ``multi_task``; ``mlp`` and ``lstm``
also on TensorFlow (``_keras``), picked by ``campaign.nn_backend``.
Importing this package loads no ML library; each adapter imports its library inside ``fit``.

Example::

    from tkplan.families import run_step
    from tkplan.runtime._context import StepContext

    result = run_step(StepContext(step=plan.steps[0], config=plan.config, hardware=plan.hardware,
                                  run_dir=run_dir, out_dir=run_dir / "steps" / plan.steps[0].id))
    result["metrics"]["test"]["r2"], result["threads"]

.. versionadded:: 0.1
"""

from tkplan.families._adapter import FamilyAdapter as FamilyAdapter
from tkplan.families._adapter import FitResult as FitResult
from tkplan.families._adapter import Params as Params
from tkplan.families._adapter import TrainingData as TrainingData
from tkplan.families._adapter import adapter_for as adapter_for
from tkplan.families._adapter import register as register
from tkplan.families._adapter import registered as registered
from tkplan.families._data import Dataset as Dataset
from tkplan.families._data import Part as Part
from tkplan.families._data import data_digest as data_digest
from tkplan.families._data import load_prepared as load_prepared
from tkplan.families._data import prepare as prepare
from tkplan.families._ensemble import EnsembleAdapter as EnsembleAdapter
from tkplan.families._gbdt import LightGBMAdapter as LightGBMAdapter
from tkplan.families._gbdt import QuantileLightGBMAdapter as QuantileLightGBMAdapter
from tkplan.families._gbdt import XGBoostAdapter as XGBoostAdapter
from tkplan.families._keras import KerasLSTMAdapter as KerasLSTMAdapter
from tkplan.families._keras import KerasMLPAdapter as KerasMLPAdapter
from tkplan.families._linear import FTRLProximalAdapter as FTRLProximalAdapter
from tkplan.families._linear import RewardBasedAdapter as RewardBasedAdapter
from tkplan.families._metrics import evaluate as evaluate
from tkplan.families._metrics import rank_ic as rank_ic
from tkplan.families._ngboost import NGBoostAdapter as NGBoostAdapter
from tkplan.families._nn import CNN1DAdapter as CNN1DAdapter
from tkplan.families._nn import GANAdapter as GANAdapter
from tkplan.families._nn import LSTMAdapter as LSTMAdapter
from tkplan.families._nn import MetaLearningAdapter as MetaLearningAdapter
from tkplan.families._nn import MLPAdapter as MLPAdapter
from tkplan.families._nn import MultiTaskAdapter as MultiTaskAdapter
from tkplan.families._nn import TabCNNAdapter as TabCNNAdapter
from tkplan.families._nn import TabLSTMAdapter as TabLSTMAdapter
from tkplan.families._nn import TabTransformerAdapter as TabTransformerAdapter
from tkplan.families._nn import TorchAdapter as TorchAdapter
from tkplan.families._nn import TransformerAdapter as TransformerAdapter
from tkplan.families._nn import VAEAdapter as VAEAdapter
from tkplan.families._regime import ChangePointAdapter as ChangePointAdapter
from tkplan.families._regime import GMMRegimeAdapter as GMMRegimeAdapter
from tkplan.families._run import predictions_file as predictions_file
from tkplan.families._run import run_step as run_step
from tkplan.families._sources import BUILTINS as BUILTINS

__all__ = [
    "BUILTINS",
    "CNN1DAdapter",
    "ChangePointAdapter",
    "Dataset",
    "EnsembleAdapter",
    "FTRLProximalAdapter",
    "FamilyAdapter",
    "FitResult",
    "GANAdapter",
    "GMMRegimeAdapter",
    "KerasLSTMAdapter",
    "KerasMLPAdapter",
    "LSTMAdapter",
    "LightGBMAdapter",
    "MLPAdapter",
    "MetaLearningAdapter",
    "MultiTaskAdapter",
    "NGBoostAdapter",
    "Params",
    "Part",
    "QuantileLightGBMAdapter",
    "RewardBasedAdapter",
    "TabCNNAdapter",
    "TabLSTMAdapter",
    "TabTransformerAdapter",
    "TorchAdapter",
    "TrainingData",
    "TransformerAdapter",
    "VAEAdapter",
    "XGBoostAdapter",
    "adapter_for",
    "data_digest",
    "evaluate",
    "load_prepared",
    "predictions_file",
    "prepare",
    "rank_ic",
    "register",
    "registered",
    "run_step",
]

for _built_in in (LightGBMAdapter, QuantileLightGBMAdapter, XGBoostAdapter, NGBoostAdapter, EnsembleAdapter,
                 GMMRegimeAdapter, ChangePointAdapter, FTRLProximalAdapter, RewardBasedAdapter, MLPAdapter,
                 CNN1DAdapter, LSTMAdapter, TransformerAdapter, TabCNNAdapter, TabLSTMAdapter, TabTransformerAdapter,
                 VAEAdapter, GANAdapter, MetaLearningAdapter, MultiTaskAdapter, KerasMLPAdapter, KerasLSTMAdapter):
    register(_built_in)
del _built_in
