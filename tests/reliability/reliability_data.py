"""Small valid canonical tables as text, for the reliability tests."""
import pandas as pd


def csv_tables(**overrides) -> dict[str, pd.DataFrame]:
    """Five small valid tables as text (CSV-like), with ``overrides`` replacing whole tables."""
    tables = {
        "clients": pd.DataFrame({
            "client_id": ["a", "b", "c"], "birth_date": ["1950-01-01", "1990-05-05", "2001-02-03"],
            "sex": ["F", "M", "F"], "municipality": ["Hyvinkää"] * 3, "language": ["fi", "sv", "fi"],
            "death_date": ["", "", ""], "unit": ["u1", "u1", "u2"]}),
        "events": pd.DataFrame({
            "client_id": ["a", "b", "c", "a"], "start": ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01"],
            "end": ["", "2021-02-03", "", ""], "service": ["emergency", "inpatient", "primary_care_visit",
                                                            "emergency"],
            "professional": ["", "ward.u1.01", "doctor.u1.02", ""], "cost_eur": ["300", "", "130", "12.5"],
            "unit": [""] * 4}),
        "diagnoses": pd.DataFrame({"client_id": ["a", "b"], "date": ["2021-01-01", "2021-02-01"],
                                   "code": ["E11.9", "T90"], "system": ["ICD-10", "ICPC-2"]}),
        "measurements": pd.DataFrame({"client_id": ["a"], "date": ["2021-01-01"], "name": ["hba1c"],
                                      "value": ["48"]}),
        "assessments": pd.DataFrame({"client_id": ["a"], "date": ["2021-01-01"], "instrument": ["rai_hc"],
                                     "scale": ["maple"], "value": ["3"]}),
    }
    tables.update(overrides)
    return tables


def write_csv(folder, tables: dict[str, pd.DataFrame], encoding: str = "utf-8"):
    """Write ``tables`` as CSV files into ``folder`` (created); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, encoding=encoding)
    return folder
