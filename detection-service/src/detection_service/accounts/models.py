"""The accounts whose data this service erased: the shared `erased_accounts` table
(objectvision_common.erasure) in the detection schema."""

from detection_service.database import metadata
from objectvision_common.erasure import erased_accounts_table

ERASED_ACCOUNTS = erased_accounts_table(metadata)
