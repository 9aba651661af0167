"""Service-need models: training, evaluation, SHAP explanations, MLflow tracking, scoring."""
