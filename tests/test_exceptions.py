"""The error classes: what each attribute holds, pickling across processes."""

from __future__ import annotations

import pickle

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsnexus.exceptions import (
    SMSNexusCredentialsRejectedError,
    SMSNexusError,
    SMSNexusValidationError,
)


def test_the_servers_words_are_kept_apart_from_the_explanation():
    error = SMSNexusValidationError("Fix the 'to' field", server_message="The given data was invalid.")
    assert str(error) == "Fix the 'to' field"
    assert error.server_message == "The given data was invalid."


@pytest.mark.parametrize(
    ("status_code", "words"),
    [(401, "fix the password of connection 'smsnexus_default'"), (403, "the account is suspended")],
)
def test_rejected_credentials_say_what_to_fix_and_fail_without_retries(status_code, words):
    error = SMSNexusCredentialsRejectedError(status_code, "smsnexus_default", "Unauthenticated.")
    assert isinstance(error, SMSNexusError)
    assert isinstance(error, AirflowFailException)
    assert words in str(error)
    assert "(server said: Unauthenticated.)" in str(error)
    assert (error.status_code, error.server_message) == (status_code, "Unauthenticated.")


def test_rejected_credentials_survive_pickling():
    error = SMSNexusCredentialsRejectedError(403, "smsnexus_default", "Account suspended")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is SMSNexusCredentialsRejectedError
    assert (str(clone), clone.status_code, clone.server_message) == (str(error), 403, "Account suspended")


def test_the_sensors_old_private_name_still_imports():
    from airflow_provider_smsnexus.sensors.balance import _CredentialsRejectedError

    assert _CredentialsRejectedError is SMSNexusCredentialsRejectedError


def test_number_errors_keep_where_the_number_was_across_pickling():
    from airflow_provider_smsnexus.exceptions import (
        SMSNexusCampaignError,
        SMSNexusInvalidNumberError,
        SMSNexusSuppressionListError,
    )

    number = pickle.loads(
        pickle.dumps(SMSNexusInvalidNumberError("from_number='2015550142' ...", parameter="from_number"))
    )
    listed = pickle.loads(
        pickle.dumps(
            SMSNexusSuppressionListError("bad line", source="stop.csv", places=["line 3 of stop.csv"])
        )
    )
    assert (type(number), number.parameter) == (SMSNexusInvalidNumberError, "from_number")
    assert (type(listed), listed.source, listed.places) == (
        SMSNexusSuppressionListError,
        "stop.csv",
        ["line 3 of stop.csv"],
    )
    assert all(isinstance(error, (SMSNexusCampaignError, AirflowFailException)) for error in (number, listed))
