"""Model registry: champion / challenger promotion under the ``champion`` alias."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ALIAS = "champion"


def champion_challenger(name: str, version: str, validation: pd.DataFrame, y: np.ndarray, challenger_auroc: float
                        ) -> tuple[bool, str]:
    """Move the alias to ``version`` only if it beats the current champion on the same validation rows.

    The champion is re-scored on the challenger's validation data (not compared
    by the number it logged on some other date). A champion that cannot score
    the data (e.g. built with another feature spec) loses, and the reason is said.

    Returns
    -------
    (promoted, decision)
    """
    import mlflow

    client = mlflow.MlflowClient()
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is None:
        client.set_registered_model_alias(name, ALIAS, version)
        return True, f"no champion for {name}; version {version} (AUROC {challenger_auroc:.4f}) becomes champion"
    if str(current.version) == str(version):
        return True, f"version {version} is already the champion"
    try:
        champion = mlflow.pyfunc.load_model(f"models:/{name}@{ALIAS}")
        champion_auroc = float(roc_auc_score(y, champion.predict(validation)))
    except Exception as err:  # noqa: BLE001 - any failure to score means it cannot stay champion
        client.set_registered_model_alias(name, ALIAS, version)
        return True, (f"champion version {current.version} could not score the validation data ({err}); "
                      f"version {version} becomes champion")
    if challenger_auroc > champion_auroc:
        client.set_registered_model_alias(name, ALIAS, version)
        return True, (f"challenger version {version} AUROC {challenger_auroc:.4f} beats champion version "
                      f"{current.version} AUROC {champion_auroc:.4f}: promoted")
    return False, (f"challenger version {version} AUROC {challenger_auroc:.4f} does not beat champion version "
                   f"{current.version} AUROC {champion_auroc:.4f}: champion kept")
