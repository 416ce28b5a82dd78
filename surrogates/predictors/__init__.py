"""Accuracy predictors for architectures' feature vectors, by name.

    from surrogates.predictors import create_predictor, list_predictors
    model = create_predictor("rf", seed=0).fit(X, y)
    scores = model.predict(X_new)
    model.save("run/surrogate"); same = load_predictor("run/surrogate")

Names: random, rf, xgb, xgb_tuned, lgbm, ensemble_xgb, ensemble_lgbm, ensemble_mix, mlp, linear,
ridge, tr_rf, lm, bert (the last two: language models over architecture strings, see
``language_model``). Each has ``conf/surrogate/<name>.yaml`` whose keys (less ``name``/``_target_``/
``_partial_``) are the constructor's keyword arguments. See ``base`` for inputs and the on-disk
format.
"""
from surrogates.predictors.base import (
    Predictor,
    as_feature_matrix,
    create_predictor,
    list_predictors,
    load_predictor,
    predictor_class,
    register,
)
from surrogates.predictors.boosting import LGBMPredictor, XGBPredictor, XGBTunedPredictor
from surrogates.predictors.ensemble import EnsemblePredictor, LGBMEnsemble, MixEnsemble, XGBEnsemble
from surrogates.predictors.language_model import BertPredictor, LanguageModelPredictor
from surrogates.predictors.sklearn_models import (
    LinearPredictor,
    MLPPredictor,
    RandomForestPredictor,
    RandomPredictor,
    RidgePredictor,
)
from surrogates.predictors.transfer import TransferRF

__all__ = [
    "Predictor",
    "as_feature_matrix",
    "create_predictor",
    "list_predictors",
    "load_predictor",
    "predictor_class",
    "register",
    "RandomPredictor",
    "RandomForestPredictor",
    "MLPPredictor",
    "LinearPredictor",
    "RidgePredictor",
    "XGBPredictor",
    "XGBTunedPredictor",
    "LGBMPredictor",
    "EnsemblePredictor",
    "XGBEnsemble",
    "LGBMEnsemble",
    "MixEnsemble",
    "TransferRF",
    "LanguageModelPredictor",
    "BertPredictor",
]
