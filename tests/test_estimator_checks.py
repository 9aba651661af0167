"""scikit-learn's own estimator checks on every estimator of ours.

Each check an estimator is expected to fail is listed by name with the reason;
everything else must pass. The instances are configured small (few rounds, no
bootstrap) so the checks stay fast; their behaviour is that of the defaults.
"""
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.baselines import PriorCostBaseline
from models.calibration import ProbabilityCalibrator
from models.estimator import ServiceNeedClassifier
from segmentation.cluster import Segmenter
from segmentation.preprocess import UseProfileTransformer

# sklearn's checks fit on 10-30 rows. The estimator splits clients into three client-disjoint slices (fit,
# early stopping, calibration) and refuses, with its own message, data where a slice lacks 2 rows of each class.
_TOO_SMALL = ("fits on 10-30 rows; ServiceNeedClassifier refuses data where any of its three client-disjoint "
              "slices (fit, early stopping, calibration) lacks 2 rows of each class (TooFewOutcomesError)")
SERVICE_NEED_XFAIL = {name: _TOO_SMALL for name in (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_pipeline_consistency", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array", "check_classifiers_classes",
    "check_supervised_y_2d", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_dict_unchanged", "check_fit2d_predict1d")}
SERVICE_NEED_XFAIL["check_fit2d_1feature"] = ("10 rows of one feature: refused for too few outcomes per slice, "
                                              "not for the single feature the check's message expects")

_NOT_0_1 = "passes a y that is not a 0/1 outcome; a calibrator maps scores to the probability of outcome 1 only"
_ONE_D = ("indexes X as 2-D although the calibrator declares 1-D input (one score per row, input_tags.one_d_array), "
          "so the check itself raises IndexError")
CALIBRATOR_XFAIL = {
    **{name: _NOT_0_1 for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_n_features_in_after_fitting", "check_positive_only_tag_during_fit",
        "check_estimators_dtypes", "check_dtype_object")},
    **{name: _ONE_D for name in (
        "check_dont_overwrite_parameters", "check_f_contiguous_array_estimator",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
        "check_fit2d_1feature", "check_dict_unchanged", "check_fit2d_predict1d", "check_n_features_in")},
    "check_estimator_sparse_array": "a 1-D sparse array cannot be converted by the check itself ('lil' format)",
}

PRIOR_COST_XFAIL = {
    "check_classifiers_train": ("the baseline ranks by one column (last year's cost) by design, so it cannot reach "
                                "the check's 83 % training accuracy on blobs separated by every column"),
}

EXPECTED = {
    ServiceNeedClassifier: SERVICE_NEED_XFAIL,
    ProbabilityCalibrator: CALIBRATOR_XFAIL,
    PriorCostBaseline: PRIOR_COST_XFAIL,
}


def _expected_failures(estimator) -> dict[str, str]:
    return EXPECTED.get(type(estimator), {})


@parametrize_with_checks([
    Segmenter(k=3, n_bootstrap=0, preprocess=StandardScaler()),
    UseProfileTransformer(patterns=(".*",)),
    ProbabilityCalibrator("isotonic"),
    ProbabilityCalibrator("platt"),
    PriorCostBaseline(column=0),
    ServiceNeedClassifier(n_estimators=30, early_stopping_rounds=5, n_jobs=1),
], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_every_expected_failure_names_a_check_and_a_reason():
    for table in EXPECTED.values():
        for name, reason in table.items():
            assert name.startswith("check_") and len(reason) > 40, name
