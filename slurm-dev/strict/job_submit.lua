-- The strict site's submit filter (JobSubmitPlugins=lua): as Alliance
-- sites do, a job must name its account; the message reaches the user
-- through sbatch/srun ("sbatch: error: ..."), then Slurm's own last line.
-- Root and SlurmUser (the cluster's own checks) are exempt.
function slurm_job_submit(job_desc, part_list, submit_uid)
   if submit_uid == 0 or submit_uid == 64030 then
      return slurm.SUCCESS
   end
   if job_desc.account == nil or job_desc.account == "" then
      slurm.log_user("You have to specify an account for your job with --account=<account> " ..
                     "(sacctmgr show assoc user=$USER format=account lists yours, e.g. def-prof1_cpu)")
      return slurm.ERROR
   end
   return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
   return slurm.SUCCESS
end
