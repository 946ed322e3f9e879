"""A deliberately bad edit of the case workflow, for the replay test to catch.

Kept in a module of its own: the workflow sandbox re-imports the module that
defines a workflow, so it must import nothing but workflow code.
"""

from datetime import timedelta

from temporalio import workflow

from workflows.case import CollectionCaseWorkflow


@workflow.defn(name="CollectionCase")
class ChangedWithoutPatch(CollectionCaseWorkflow):
    """Today's workflow plus one timer before anything else: what an unguarded edit looks like."""

    @workflow.run
    async def run(self, start):
        await workflow.sleep(timedelta(seconds=1))  # a new command that old histories do not have
        return await super().run(start)

