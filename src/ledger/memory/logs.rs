//! The append-only logs of the in-memory ledger: referrals (one per notice, ever),
//! Treasury actions (one per run, notice, liabilities and action) and approvals.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{MemoryLedger, Tables};
use crate::account::TopReferral;
use crate::ledger::rules;
use crate::ledger::{
    Approval, ApprovalLog, LedgerError, NewApproval, NewReferral, ReferralRecord, TreasuryAction,
    TreasuryLog, TreasuryRecord, stamp,
};
use crate::letter::LetterKey;

impl Tables {
    fn insert_referral(&mut self, referral: &NewReferral, run_id: i64, at: DateTime<Utc>) -> bool {
        if self.referrals.contains_key(&referral.notice_key) {
            return false;
        }
        self.referrals.insert(
            referral.notice_key.clone(),
            ReferralRecord {
                notice_key: referral.notice_key.clone(),
                account_id: referral.account_id.clone(),
                liability_ids: referral.liability_ids.clone(),
                amount: referral.amount,
                deadline_passed: referral.deadline_passed,
                run_id,
                at,
            },
        );
        true
    }

    fn treasury_of(&self, run_id: Option<i64>, account_id: Option<&str>) -> Vec<TreasuryRecord> {
        self.treasury
            .iter()
            .filter(|r| run_id.is_none_or(|id| r.run_id == id))
            .filter(|r| account_id.is_none_or(|a| r.action.account_id == a))
            .cloned()
            .collect()
    }
}

impl TreasuryLog for MemoryLedger {
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[NewReferral],
    ) -> Result<Vec<NewReferral>, LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let at = stamp::now();
            Ok(referrals
                .iter()
                .filter(|r| t.insert_referral(r, run_id, at))
                .cloned()
                .collect())
        })
    }

    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[TreasuryAction],
        deadlines: &HashMap<LetterKey, chrono::NaiveDate>,
    ) -> Result<usize, LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let at = stamp::now();
            let mut new = 0;
            for a in actions {
                let recorded = t.treasury.iter().any(|r| {
                    r.run_id == run_id
                        && r.action.notice_key == a.notice_key
                        && r.action.liability_ids == a.liability_ids
                        && r.action.action == a.action
                });
                if recorded {
                    continue;
                }
                t.treasury.push(TreasuryRecord {
                    id: t.treasury.len() as i64 + 1,
                    run_id,
                    at,
                    action: a.clone(),
                });
                new += 1;
                if a.action == "add"
                    && let Some(deadline) = deadlines.get(&a.notice_key)
                {
                    let referral = a.referral(*deadline);
                    t.insert_referral(&referral, run_id, at);
                }
            }
            Ok(new)
        })
    }

    fn treasury_actions(
        &self,
        run_id: Option<i64>,
        account_id: Option<&str>,
    ) -> Result<Vec<TreasuryRecord>, LedgerError> {
        Ok(self.tables.treasury_of(run_id, account_id))
    }

    fn treasury_runs(&self) -> Result<Vec<i64>, LedgerError> {
        let mut runs: Vec<i64> = self.tables.treasury.iter().map(|r| r.run_id).collect();
        runs.sort_unstable();
        runs.dedup();
        Ok(runs)
    }

    fn top_holdings(&self) -> Result<HashMap<String, Vec<TopReferral>>, LedgerError> {
        Ok(rules::holdings(self.tables.treasury_of(None, None)))
    }

    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError> {
        let mut all: Vec<ReferralRecord> = self.tables.referrals.values().cloned().collect();
        all.sort_by(|a, b| (a.run_id, &a.notice_key).cmp(&(b.run_id, &b.notice_key)));
        Ok(all)
    }

    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError> {
        Ok(self
            .tables
            .referrals
            .values()
            .filter(|r| r.account_id == account_id)
            .cloned()
            .collect())
    }
}

impl ApprovalLog for MemoryLedger {
    fn record_approval(&mut self, approval: &NewApproval) -> Result<Approval, LedgerError> {
        if let Some(reason) = rules::reviewer_problem(&approval.reviewer) {
            return Err(LedgerError::BadApproval {
                template: approval.template.clone(),
                reason: reason.to_owned(),
            });
        }
        self.write(|t| {
            let recorded = Approval {
                id: t.approvals.len() as i64 + 1,
                template: approval.template.clone(),
                template_sha256: approval.template_sha256.clone(),
                reviewer: approval.reviewer.trim().to_owned(),
                at: stamp::now(),
                note: approval.note.clone(),
                sources: approval.sources.clone(),
            };
            t.approvals.push(recorded.clone());
            Ok(recorded)
        })
    }

    fn approvals(&self, template: Option<&str>) -> Result<Vec<Approval>, LedgerError> {
        Ok(self
            .tables
            .approvals
            .iter()
            .filter(|a| template.is_none_or(|t| a.template == t))
            .cloned()
            .collect())
    }

    fn approval_of(
        &self,
        template: &str,
        template_sha256: &str,
    ) -> Result<Option<Approval>, LedgerError> {
        Ok(self
            .tables
            .approvals
            .iter()
            .rev()
            .find(|a| a.template == template && a.template_sha256 == template_sha256)
            .cloned())
    }
}
